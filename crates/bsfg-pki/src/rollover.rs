//! A zone CA rollover without downtime, as three steps with a rolling
//! restart after each:
//!
//! | step | trust bundle | leaves issued by | then restart |
//! |---|---|---|---|
//! | [`Step::Begin`] | old + new | old | every daemon (they now trust both) |
//! | [`Step::Reissue`] | old + new | new | every daemon (they now present the new leaves) |
//! | [`Step::Finish`] | new | new | every daemon (they stop trusting the old CA) |
//!
//! A daemon that restarted after a step accepts every daemon that has not
//! yet: that is why each step needs the whole zone rolled before the next.
//! The state is pure data kept in the CA directory; [`Rollover::step`]
//! decides whether a step may run now and refuses with the step that is
//! due instead.

use serde::{Deserialize, Serialize};

/// One step of a rollover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Create (or take) the new CA; the bundle trusts the old and the new.
    Begin,
    /// Re-issue every certificate of the plan from the new CA.
    Reissue,
    /// The bundle trusts the new CA only; the old one is archived.
    Finish,
}

impl Step {
    /// The `bsfgctl pki rollover` subcommand of the step.
    pub fn command(self) -> &'static str {
        match self {
            Step::Begin => "bsfgctl pki rollover begin",
            Step::Reissue => "bsfgctl pki rollover reissue",
            Step::Finish => "bsfgctl pki rollover finish",
        }
    }
}

/// Where a rollover in progress stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// After `begin`: the bundle holds both CAs, the old CA still issues.
    TrustBoth,
    /// After `reissue`: every leaf is from the new CA, both still trusted.
    Reissued,
}

impl Phase {
    /// The step that is due in this phase.
    pub fn next(self) -> Step {
        match self {
            Phase::TrustBoth => Step::Reissue,
            Phase::Reissued => Step::Finish,
        }
    }

    pub fn token(self) -> &'static str {
        match self {
            Phase::TrustBoth => "trust-both",
            Phase::Reissued => "reissued",
        }
    }
}

/// A CA as the rollover state names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaIdentity {
    pub subject: String,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// The rollover in progress (`rollover.json` in the CA directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollover {
    pub phase: Phase,
    pub old: CaIdentity,
    pub new: CaIdentity,
    /// Unix seconds of `begin` and of `reissue`.
    pub begun: i64,
    pub reissued: Option<i64>,
}

/// A step run out of order: what was asked, where the rollover stands, and
/// the step that is due instead (none: no rollover in progress and the
/// step asked needs one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.explain())]
pub struct OutOfOrder {
    pub asked: Step,
    pub phase: Option<Phase>,
    pub due: Step,
}

impl OutOfOrder {
    fn explain(&self) -> String {
        let now = match self.phase {
            None => "no CA rollover is in progress".to_owned(),
            Some(Phase::TrustBoth) => {
                "a CA rollover is in progress: the bundle trusts both CAs, the old CA still issues every certificate".to_owned()
            }
            Some(Phase::Reissued) => {
                "a CA rollover is in progress: every certificate is issued by the new CA, the bundle still trusts both".to_owned()
            }
        };
        let before = match self.due {
            Step::Begin => "",
            // Both later steps rely on the whole zone having restarted
            // after the previous one.
            Step::Reissue | Step::Finish => {
                " (after every host has been rolled with the files of the previous step)"
            }
        };
        format!(
            "`{}` cannot run now: {now}; the next step is `{}`{before}",
            self.asked.command(),
            self.due.command()
        )
    }
}

impl Rollover {
    /// Whether `step` may run in the state `current` (none: no rollover in
    /// progress), and the phase it leads to (none: the rollover is over).
    pub fn step(current: Option<Phase>, step: Step) -> Result<Option<Phase>, OutOfOrder> {
        match (current, step) {
            (None, Step::Begin) => Ok(Some(Phase::TrustBoth)),
            (Some(Phase::TrustBoth), Step::Reissue) => Ok(Some(Phase::Reissued)),
            (Some(Phase::Reissued), Step::Finish) => Ok(None),
            (phase, asked) => Err(OutOfOrder {
                asked,
                phase,
                due: phase.map_or(Step::Begin, Phase::next),
            }),
        }
    }

    /// The CAs a verifier trusts in this phase, in bundle order (old first).
    pub fn trusted(&self) -> [&CaIdentity; 2] {
        [&self.old, &self.new]
    }

    /// The CA that issues leaves in this phase.
    pub fn issuing(&self) -> &CaIdentity {
        match self.phase {
            Phase::TrustBoth => &self.old,
            Phase::Reissued => &self.new,
        }
    }
}

/// A trust bundle: the PEM of each CA, one after the other (what
/// nats-server's `ca_file` and rustls' root stores read).
pub fn bundle_pem(cas: &[&str]) -> String {
    let mut out = String::new();
    for pem in cas {
        out.push_str(pem.trim_end());
        out.push('\n');
    }
    out
}

/// The common name of the CA a rollover creates: the plan's name and the
/// generation, so the old and the new CA never share a subject (verifiers
/// and the agent's gate follow issuer names).
pub fn next_common_name(plan_common_name: &str, old_subject_cn: Option<&str>) -> String {
    let generation = old_subject_cn
        .and_then(|cn| cn.strip_prefix(plan_common_name))
        .and_then(|rest| rest.trim().strip_prefix("G"))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1);
    format!("{plan_common_name} G{}", generation + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_run_only_in_order() {
        let begun = Rollover::step(None, Step::Begin).unwrap();
        assert_eq!(begun, Some(Phase::TrustBoth));
        let reissued = Rollover::step(begun, Step::Reissue).unwrap();
        assert_eq!(reissued, Some(Phase::Reissued));
        assert_eq!(Rollover::step(reissued, Step::Finish).unwrap(), None);
    }

    #[test]
    fn a_step_out_of_order_names_the_step_that_is_due() {
        let cases = [
            (None, Step::Reissue, Step::Begin),
            (None, Step::Finish, Step::Begin),
            (Some(Phase::TrustBoth), Step::Begin, Step::Reissue),
            (Some(Phase::TrustBoth), Step::Finish, Step::Reissue),
            (Some(Phase::Reissued), Step::Begin, Step::Finish),
            (Some(Phase::Reissued), Step::Reissue, Step::Finish),
        ];
        for (phase, asked, due) in cases {
            let e = Rollover::step(phase, asked).unwrap_err();
            assert_eq!((e.asked, e.phase, e.due), (asked, phase, due));
        }
        let e = Rollover::step(Some(Phase::TrustBoth), Step::Finish).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`bsfgctl pki rollover finish` cannot run now: a CA rollover is in progress: the bundle \
             trusts both CAs, the old CA still issues every certificate; the next step is \
             `bsfgctl pki rollover reissue` (after every host has been rolled with the files of \
             the previous step)"
        );
        let e = Rollover::step(None, Step::Reissue).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`bsfgctl pki rollover reissue` cannot run now: no CA rollover is in progress; the next \
             step is `bsfgctl pki rollover begin`"
        );
    }

    #[test]
    fn the_issuing_ca_moves_with_the_phase() {
        let id = |s: &str| CaIdentity {
            subject: s.into(),
            sha256: s.into(),
            not_after: 0,
        };
        let mut r = Rollover {
            phase: Phase::TrustBoth,
            old: id("old"),
            new: id("new"),
            begun: 1,
            reissued: None,
        };
        assert_eq!(r.issuing().subject, "old");
        r.phase = Phase::Reissued;
        assert_eq!(r.issuing().subject, "new");
        assert_eq!(r.trusted().map(|c| c.subject.as_str()), ["old", "new"]);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""phase":"reissued""#), "{json}");
        assert_eq!(serde_json::from_str::<Rollover>(&json).unwrap(), r);
    }

    #[test]
    fn the_new_ca_gets_the_next_generation_name() {
        assert_eq!(
            next_common_name("plant-a zone CA", Some("plant-a zone CA")),
            "plant-a zone CA G2"
        );
        assert_eq!(
            next_common_name("plant-a zone CA", Some("plant-a zone CA G2")),
            "plant-a zone CA G3"
        );
        // An enterprise intermediate: the zone's own CA starts again at G2.
        assert_eq!(
            next_common_name("plant-a zone CA", Some("plant-a intermediate")),
            "plant-a zone CA G2"
        );
        assert_eq!(
            bundle_pem(&["A\n", "B"]),
            "A\nB\n",
            "one PEM after the other, each ending in a newline"
        );
    }
}
