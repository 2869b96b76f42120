//! Compiling an OCI seccomp section to the BPF program the kernel loads, with libseccomp
//! (the compiler runc and crun use), so the work is done once per profile by the daemon
//! instead of once per container by the runtime. crun takes the result through the
//! `run.oci.seccomp_bpf_data` annotation.
//!
//! The translation follows the runtimes': rules whose action is the default are skipped,
//! syscalls unknown to this libseccomp are ignored, and conditions on distinct arguments
//! are one rule (AND) while several conditions on the same argument are separate rules (OR).

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use std::io::{Read, Seek};
use std::str::FromStr;

/// The annotation crun reads precompiled filters from (base64 of the raw BPF).
pub const CRUN_BPF_ANNOTATION: &str = "run.oci.seccomp_bpf_data";

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("compiling the seccomp filter: {what}: {message}")]
    Compile { what: String, message: String },
    #[error("exporting the seccomp filter")]
    Export {
        #[source]
        source: std::io::Error,
    },
}

impl berth_core::error::HasKind for BpfError {
    fn kind(&self) -> berth_core::ErrorKind {
        berth_core::ErrorKind::InvalidArgument
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    const EPERM: i32 = 1;
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.map_or(EPERM, |e| e as i32)),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.map_or(EPERM as u16, |e| e as u16))
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn compare(
    op: LinuxSeccompOperator,
    index: usize,
    value: u64,
    value_two: Option<u64>,
) -> ScmpArgCompare {
    let (op, datum) = match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI: value is the mask, valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0))
        }
    };
    ScmpArgCompare::new(index as u32, op, datum)
}

fn err(what: impl Into<String>, e: impl std::fmt::Display) -> BpfError {
    BpfError::Compile {
        what: what.into(),
        message: e.to_string(),
    }
}

/// Compiles a seccomp section to raw BPF (`struct sock_filter` array).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Vec<u8>, BpfError> {
    let default = action(seccomp.default_action(), seccomp.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("creating context", e))?;
    // The runtime sets no_new_privs itself, as the spec asks.
    ctx.set_ctl_nnp(false)
        .map_err(|e| err("no_new_privs attribute", e))?;
    for arch in seccomp.architectures().iter().flatten() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let parsed =
            ScmpArch::from_str(&name).map_err(|e| err(format!("architecture {name}"), e))?;
        if parsed != ScmpArch::native() {
            ctx.add_arch(parsed)
                .map_err(|e| err(format!("adding architecture {name}"), e))?;
        }
    }
    for rule in seccomp.syscalls().iter().flatten() {
        if rule.action() == seccomp.default_action()
            && rule.errno_ret() == seccomp.default_errno_ret()
        {
            continue;
        }
        let act = action(rule.action(), rule.errno_ret());
        let args = rule.args().clone().unwrap_or_default();
        let conds: Vec<ScmpArgCompare> = args
            .iter()
            .map(|a| compare(a.op(), a.index(), a.value(), a.value_two()))
            .collect();
        let mut indices: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indices.sort_unstable();
        let repeated = indices.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let result = if conds.is_empty() {
                ctx.add_rule(act, sys)
            } else if repeated {
                conds
                    .iter()
                    .try_for_each(|c| {
                        ctx.add_rule_conditional(act, sys, std::slice::from_ref(c))
                            .map(drop)
                    })
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, sys, &conds)
            };
            result.map_err(|e| err(format!("rule for {name}"), e))?;
        }
    }
    let mut file = tempfile::tempfile().map_err(|source| BpfError::Export { source })?;
    ctx.export_bpf(&file).map_err(|e| err("exporting", e))?;
    file.rewind()
        .map_err(|source| BpfError::Export { source })?;
    let mut bpf = Vec::new();
    file.read_to_end(&mut bpf)
        .map_err(|source| BpfError::Export { source })?;
    Ok(bpf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostFacts;

    #[test]
    fn the_default_profile_compiles_to_whole_bpf_instructions() {
        let filter =
            crate::seccomp::default_filter(crate::caps::DEFAULT, HostFacts::current()).unwrap();
        let bpf = compile(&filter).unwrap();
        // struct sock_filter is 8 bytes; a real allow-list is hundreds of instructions.
        assert_eq!(bpf.len() % 8, 0);
        assert!(bpf.len() / 8 > 100, "only {} instructions", bpf.len() / 8);
    }

    #[test]
    fn more_capabilities_give_a_different_program() {
        let facts = HostFacts::current();
        let base =
            compile(&crate::seccomp::default_filter(crate::caps::DEFAULT, facts).unwrap()).unwrap();
        let mut caps = crate::caps::DEFAULT.to_vec();
        caps.push(oci_spec::runtime::Capability::SysAdmin);
        let admin = compile(&crate::seccomp::default_filter(&caps, facts).unwrap()).unwrap();
        assert_ne!(base, admin);
    }
}
