//! The dependency graph of services: `depends_on`, `network_mode: service:x`,
//! `volumes_from` and `links` all mean "start that one first". [`order`] sorts services
//! so every service comes after what it needs, and reports a cycle by its members.

use crate::error::{Error, Result};
use crate::load::Project;
use crate::model::Service;
use std::collections::{BTreeMap, BTreeSet};

/// The services `s` needs started before it (among `known`).
pub fn dependencies(s: &Service, known: &dyn Fn(&str) -> bool) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = s.depends_on.keys().cloned().collect();
    if let Some(other) = s
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        out.insert(other.to_string());
    }
    for vf in &s.volumes_from {
        if !vf.starts_with("container:") {
            out.insert(vf.split(':').next().unwrap_or("").to_string());
        }
    }
    for l in &s.links {
        out.insert(l.split(':').next().unwrap_or("").to_string());
    }
    out.retain(|d| known(d));
    out
}

/// Every enabled service's dependencies.
pub fn dependency_map(p: &Project) -> BTreeMap<String, BTreeSet<String>> {
    let known = |n: &str| p.services.contains_key(n);
    p.services
        .iter()
        .map(|(n, s)| (n.clone(), dependencies(s, &known)))
        .collect()
}

/// The services in an order where each follows its dependencies (ties by name).
pub fn order(p: &Project) -> Result<Vec<String>> {
    let deps = dependency_map(p);
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    // 0 = unvisited, 1 = on the stack, 2 = finished.
    let mut state: BTreeMap<String, u8> = BTreeMap::new();
    fn visit(
        n: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> std::result::Result<(), Vec<String>> {
        match state.get(n).copied().unwrap_or(0) {
            2 => return Ok(()),
            1 => {
                let start = stack.iter().position(|x| x == n).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(n.to_string());
                return Err(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in deps.get(n).into_iter().flatten() {
            visit(d, deps, state, stack, out, done)?;
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        if done.insert(n.to_string()) {
            out.push(n.to_string());
        }
        Ok(())
    }
    for n in deps.keys() {
        let mut stack = Vec::new();
        visit(n, &deps, &mut state, &mut stack, &mut out, &mut done).map_err(|cycle| {
            Error::Cycle {
                file: p
                    .services
                    .get(&cycle[0])
                    .map(|s| s.source_file.clone())
                    .unwrap_or_else(|| p.main_file()),
                cycle: cycle.join(" -> "),
            }
        })?;
    }
    Ok(out)
}

/// `names` and everything they depend on, transitively (all services when empty).
pub fn with_dependencies(p: &Project, names: &[String]) -> BTreeSet<String> {
    if names.is_empty() {
        return p.services.keys().cloned().collect();
    }
    let deps = dependency_map(p);
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if out.insert(n.clone()) {
            todo.extend(deps.get(&n).into_iter().flatten().cloned());
        }
    }
    out
}

/// The services that depend on any of `names`, transitively, plus `names`.
pub fn with_dependents(p: &Project, names: &BTreeSet<String>) -> BTreeSet<String> {
    let deps = dependency_map(p);
    let mut out = names.clone();
    loop {
        let before = out.len();
        for (n, ds) in &deps {
            if ds.iter().any(|d| out.contains(d)) {
                out.insert(n.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}
