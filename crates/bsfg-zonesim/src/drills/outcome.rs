//! Expected and observed outcomes (contract section 8) and the pure
//! evaluation that turns a drill's observations into pass or fail.

use serde::{Deserialize, Serialize};

/// Where the zone ends up: who holds the VIP, whose controller serves.
/// Expected sets of `None` are not fixed by the contract (e.g. which host
/// wins a simultaneous boot); the drill's checks cover them instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The contract's row for the scenario (expected side), or a summary (observed side).
    pub summary: String,
    pub vip: Option<Vec<String>>,
    pub serving: Option<Vec<String>>,
}

/// One named assertion a drill made while it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What the evaluation needs besides the outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Safety {
    pub acked: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub dual_active_samples: usize,
    pub samples: usize,
}

/// Every reason the drill failed; empty means it passed.
pub fn evaluate(
    expected: &Outcome,
    observed: &Outcome,
    safety: &Safety,
    checks: &[Check],
) -> Vec<String> {
    let mut failures = Vec::new();
    if safety.lost > 0 {
        failures.push(format!("{} acknowledged appends lost", safety.lost));
    }
    if safety.duplicates > 0 {
        failures.push(format!(
            "{} message ids stored more than once",
            safety.duplicates
        ));
    }
    if safety.dual_active_samples > 0 {
        failures.push(format!(
            "two controllers served at once in {} samples",
            safety.dual_active_samples
        ));
    }
    if safety.acked == 0 {
        failures.push("no append was acknowledged: the drill proved nothing".into());
    }
    if safety.samples == 0 {
        failures.push("the checker took no samples: the drill proved nothing".into());
    }
    for (what, want, got) in [
        ("VIP", &expected.vip, &observed.vip),
        ("serving controller", &expected.serving, &observed.serving),
    ] {
        if let (Some(want), Some(got)) = (want, got)
            && want != got
        {
            failures.push(format!(
                "{what} on {} at the end, expected on {}",
                list(got),
                list(want)
            ));
        }
    }
    for c in checks.iter().filter(|c| !c.passed) {
        failures.push(format!("{}: {}", c.name, c.detail));
    }
    failures
}

/// `alpha, beta` or `no host`.
pub fn list(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(vip: &[&str], serving: &[&str]) -> Outcome {
        Outcome {
            summary: String::new(),
            vip: Some(vip.iter().map(|s| (*s).to_owned()).collect()),
            serving: Some(serving.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    const SAFE: Safety = Safety {
        acked: 100,
        lost: 0,
        duplicates: 0,
        dual_active_samples: 0,
        samples: 400,
    };

    #[test]
    fn a_clean_failover_passes() {
        let e = outcome(&["beta"], &["beta"]);
        assert!(evaluate(&e, &e.clone(), &SAFE, &[]).is_empty());
    }

    #[test]
    fn loss_duplicates_and_dual_active_each_fail() {
        let e = outcome(&["beta"], &["beta"]);
        let f = evaluate(
            &e,
            &e,
            &Safety {
                lost: 2,
                duplicates: 1,
                dual_active_samples: 3,
                ..SAFE
            },
            &[],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].contains("2 acknowledged appends lost"));
        assert!(f[2].contains("3 samples"));
    }

    #[test]
    fn the_wrong_final_placement_fails_and_names_both_sides() {
        let f = evaluate(
            &outcome(&["beta"], &["beta"]),
            &outcome(&["alpha", "beta"], &[]),
            &SAFE,
            &[],
        );
        assert_eq!(
            f,
            vec![
                "VIP on alpha, beta at the end, expected on beta".to_owned(),
                "serving controller on no host at the end, expected on beta".to_owned()
            ]
        );
    }

    #[test]
    fn unfixed_expectations_defer_to_checks_and_empty_runs_fail() {
        let e = Outcome::default();
        let checks = [Check {
            name: "one controller on the VIP holder".into(),
            passed: false,
            detail: "none serving".into(),
        }];
        let f = evaluate(&e, &outcome(&["beta"], &["beta"]), &SAFE, &checks);
        assert_eq!(
            f,
            vec!["one controller on the VIP holder: none serving".to_owned()]
        );
        let f = evaluate(&e, &e, &Safety::default(), &[]);
        assert_eq!(f.len(), 2, "no acks and no samples: {f:?}");
    }
}
