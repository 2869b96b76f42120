//! Convergence: from the containers a service has now to the ones it should have. Each
//! existing container is kept (and started if stopped), recreated (its config hash or
//! image changed, or `--force-recreate`), or removed (scaled down); missing numbers are
//! created. The decisions are pure so they can be tested without a daemon.

/// A container of the service as the daemon lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub number: u64,
    pub config_hash: String,
    /// The id of the image the container was created from.
    pub image_id: String,
    /// `running`, `exited`, `created`, `paused`, `restarting`, `dead`.
    pub state: String,
}

/// `up`'s recreate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recreate {
    /// Recreate containers whose configuration or image changed.
    #[default]
    Diverged,
    /// `--force-recreate`.
    Always,
    /// `--no-recreate`.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        number: u64,
    },
    Recreate {
        old: Observed,
    },
    /// Up to date; started if it is not running.
    Keep {
        container: Observed,
    },
    /// Beyond the wanted scale.
    Remove {
        container: Observed,
    },
}

/// The actions for one service that wants `scale` containers with `hash` from image
/// `image_id` (None when unknown, e.g. before a build).
pub fn converge(
    scale: u64,
    hash: &str,
    image_id: Option<&str>,
    mut observed: Vec<Observed>,
    policy: Recreate,
) -> Vec<Action> {
    observed.sort_by_key(|o| (o.number, o.name.clone()));
    let mut out = Vec::new();
    let mut kept = 0u64;
    let mut used = std::collections::BTreeSet::new();
    // Running containers first when trimming, as compose keeps the lowest numbers.
    for o in observed {
        if kept >= scale || !used.insert(o.number) {
            out.push(Action::Remove { container: o });
            continue;
        }
        kept += 1;
        let diverged =
            o.config_hash != hash || image_id.is_some_and(|id| !id.is_empty() && id != o.image_id);
        let recreate = match policy {
            Recreate::Always => true,
            Recreate::Never => false,
            Recreate::Diverged => diverged,
        };
        if recreate {
            out.push(Action::Recreate { old: o });
        } else {
            out.push(Action::Keep { container: o });
        }
    }
    let mut n = 1;
    while kept < scale {
        if used.insert(n) {
            out.push(Action::Create { number: n });
            kept += 1;
        }
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(n: u64, hash: &str, state: &str) -> Observed {
        Observed {
            id: format!("id{n}"),
            name: format!("p-web-{n}"),
            number: n,
            config_hash: hash.into(),
            image_id: "sha256:img".into(),
            state: state.into(),
        }
    }

    #[test]
    fn a_new_service_creates_its_replicas() {
        assert_eq!(
            converge(2, "h", None, vec![], Recreate::Diverged),
            vec![Action::Create { number: 1 }, Action::Create { number: 2 }]
        );
    }

    #[test]
    fn unchanged_containers_are_kept_and_changed_ones_recreated() {
        let a = converge(
            1,
            "h",
            Some("sha256:img"),
            vec![obs(1, "h", "running")],
            Recreate::Diverged,
        );
        assert!(matches!(&a[..], [Action::Keep { .. }]));
        let a = converge(
            1,
            "new",
            Some("sha256:img"),
            vec![obs(1, "h", "running")],
            Recreate::Diverged,
        );
        assert!(matches!(&a[..], [Action::Recreate { .. }]));
        let a = converge(
            1,
            "h",
            Some("sha256:other"),
            vec![obs(1, "h", "running")],
            Recreate::Diverged,
        );
        assert!(
            matches!(&a[..], [Action::Recreate { .. }]),
            "a new image recreates"
        );
    }

    #[test]
    fn policies_override_the_hash() {
        let a = converge(1, "h", None, vec![obs(1, "h", "running")], Recreate::Always);
        assert!(matches!(&a[..], [Action::Recreate { .. }]));
        let a = converge(1, "new", None, vec![obs(1, "h", "exited")], Recreate::Never);
        assert!(matches!(&a[..], [Action::Keep { .. }]));
    }

    #[test]
    fn scaling_down_removes_the_highest_numbers_and_up_fills_gaps() {
        let a = converge(
            1,
            "h",
            None,
            vec![obs(2, "h", "running"), obs(1, "h", "running")],
            Recreate::Diverged,
        );
        assert_eq!(a.len(), 2);
        assert!(matches!(&a[0], Action::Keep { container } if container.number == 1));
        assert!(matches!(&a[1], Action::Remove { container } if container.number == 2));
        let a = converge(
            3,
            "h",
            None,
            vec![obs(2, "h", "running")],
            Recreate::Diverged,
        );
        assert_eq!(
            a[1..].to_vec(),
            vec![Action::Create { number: 1 }, Action::Create { number: 3 }]
        );
    }
}
