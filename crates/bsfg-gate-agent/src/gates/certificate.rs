//! Gate 5: the controller's credentials are all present, and its
//! certificate, every intermediate in its chain and every CA certificate the
//! controller and NATS trust are valid for at least the policy threshold.
//!
//! A missing credential (certificate, key, CA, the NATS system user's
//! password: `controller.credentials`) fails the gate under either policy,
//! naming each missing path: a host deployed before its secrets exist keeps
//! running its agent, says exactly what to install, and promotes once the
//! files appear. Under policy `deny` a certificate below the threshold fails
//! the gate; under `warn` it passes with a warning (visible in status, logs
//! and as verdict `warn`). An expired or not-yet-valid certificate fails
//! under either policy: the controller could not complete a handshake.
//!
//! A CA is held to the same threshold as the leaf: a leaf re-issued from a
//! CA that expires next week is dead next week too, and so is every NATS
//! route verified against it. The first failing certificate of the chain
//! (leaf, intermediates, then the trusted CAs) names the gate's reason.

use super::GateResult;
use crate::config::CertificatePolicy;
use std::path::PathBuf;
use std::time::Duration;

/// One file the controller needs, as found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFacts {
    /// Its name in `controller.credentials` (`tls_private_key`).
    pub name: String,
    pub path: PathBuf,
    /// `None`: present (a non-empty regular file). Otherwise what is wrong:
    /// "no such file", "empty", "not a regular file", or why it cannot be looked at.
    pub problem: Option<String>,
}

impl CredentialFacts {
    pub fn present(&self) -> bool {
        self.problem.is_none()
    }
}

/// Gate 5 from the credentials and the certificate: the credentials first,
/// because a missing one is the first thing an operator must fix.
pub fn evaluate_with_credentials(
    now_unix: i64,
    min_validity: Duration,
    policy: CertificatePolicy,
    credentials: &[CredentialFacts],
    chain: &[ChainCertificate],
) -> GateResult {
    let missing: Vec<String> = credentials
        .iter()
        .filter_map(|c| {
            c.problem
                .as_ref()
                .map(|p| format!("{} {} ({p})", c.name, c.path.display()))
        })
        .collect();
    if !missing.is_empty() {
        return GateResult::fail(format!(
            "missing controller credential{}: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join("; ")
        ));
    }
    evaluate_chain(now_unix, min_validity, policy, chain)
}

/// Where in the trust chain a certificate sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRole {
    /// The controller's own certificate (the first of `certificate.path`).
    Leaf,
    /// A further certificate of `certificate.path` (the chain it presents).
    Intermediate,
    /// A certificate of a trusted CA bundle (`certificate.trust`).
    Ca,
}

impl ChainRole {
    pub fn name(self) -> &'static str {
        match self {
            ChainRole::Leaf => "leaf",
            ChainRole::Intermediate => "intermediate",
            ChainRole::Ca => "CA",
        }
    }
}

/// One certificate of the chain as read from its file, or why the file
/// gave none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCertificate {
    pub role: ChainRole,
    pub path: PathBuf,
    pub facts: Result<CertificateFacts, String>,
}

/// The gate over a whole chain: the leaf's verdict, unless a certificate it
/// depends on is worse. Reasons other than the leaf's name the role and
/// file ("CA CN=zone CA (/s/ca.pem) expires in 9d 23h, below ...").
///
/// The CAs held to the policy are those the leaf chains to: found in the
/// trust bundles by following issuer names from the last certificate of
/// `certificate.path` (all of them when none matches: a chain that cannot
/// be followed is not a reason to trust less). Another CA in a bundle (the
/// old CA during a rollover, a peer zone's CA) only warns when it is below
/// the threshold: it cannot stop this host's handshakes.
pub fn evaluate_chain(
    now_unix: i64,
    min_validity: Duration,
    policy: CertificatePolicy,
    chain: &[ChainCertificate],
) -> GateResult {
    let Some(leaf) = chain.iter().find(|c| c.role == ChainRole::Leaf) else {
        return GateResult::fail("no controller certificate configured");
    };
    let relied = relied_on(chain);
    let verdicts: Vec<GateResult> = chain
        .iter()
        .zip(&relied)
        .map(|(c, &relied)| match (&c.role, &c.facts) {
            (ChainRole::Leaf, facts) => evaluate(now_unix, min_validity, policy, facts),
            (role, Ok(f)) => {
                let named = CertificateFacts {
                    subject: format!("{} {} ({})", role.name(), f.subject, c.path.display()),
                    ..f.clone()
                };
                let r = evaluate(now_unix, min_validity, policy, &Ok(named));
                if relied || r.verdict == bsfg_mgmt::Verdict::Pass {
                    r
                } else {
                    let reason = r.reason.trim_end_matches(" (policy warn)");
                    GateResult::warn(format!(
                        "{reason}; not in the chain of {}, so it does not gate (remove it once a CA rollover is done)",
                        leaf.path.display()
                    ))
                }
            }
            (role, Err(e)) => GateResult::fail(format!(
                "cannot read the {} certificates of {}: {e}",
                role.name(),
                c.path.display()
            )),
        })
        .collect();
    let worst = |v: bsfg_mgmt::Verdict| verdicts.iter().find(|r| r.verdict == v);
    if let Some(r) = worst(bsfg_mgmt::Verdict::Fail).or(worst(bsfg_mgmt::Verdict::Warn)) {
        return r.clone();
    }
    let leaf_result = evaluate(now_unix, min_validity, policy, &leaf.facts);
    // All pass: the leaf, and how long the shortest-lived CA it relies on has left.
    let shortest = chain
        .iter()
        .zip(&relied)
        .filter(|(c, relied)| c.role != ChainRole::Leaf && **relied)
        .filter_map(|(c, _)| c.facts.as_ref().ok().map(|f| (c, f)))
        .min_by_key(|(_, f)| f.not_after);
    match shortest {
        None => leaf_result,
        Some((c, f)) => GateResult::pass(format!(
            "{}; {} {} valid for {}",
            leaf_result.reason,
            c.role.name(),
            f.subject,
            human(f.not_after - now_unix)
        )),
    }
}

/// Which certificates of `chain` this host's handshakes depend on: the
/// leaf file's own, and the trusted CAs reached by issuer names from its
/// last certificate (every CA if that reaches none).
pub fn relied_on(chain: &[ChainCertificate]) -> Vec<bool> {
    let mut relied: Vec<bool> = chain.iter().map(|c| c.role != ChainRole::Ca).collect();
    let top = chain
        .iter()
        .filter(|c| c.role != ChainRole::Ca)
        .filter_map(|c| c.facts.as_ref().ok())
        .next_back();
    let mut issuer = top
        .filter(|f| f.issuer != f.subject)
        .map(|f| f.issuer.clone());
    while let Some(name) = issuer.take() {
        for (i, c) in chain.iter().enumerate() {
            if let (ChainRole::Ca, Ok(f), false) = (c.role, &c.facts, relied[i])
                && f.subject == name
            {
                relied[i] = true;
                if f.issuer != f.subject {
                    issuer = Some(f.issuer.clone());
                }
            }
        }
    }
    let any_ca_relied = chain
        .iter()
        .zip(&relied)
        .any(|(c, r)| c.role == ChainRole::Ca && *r);
    if !any_ca_relied {
        relied.iter_mut().for_each(|r| *r = true);
    }
    relied
}

/// The validity window of the leaf certificate, in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub subject: String,
    /// The issuer's distinguished name (equal to `subject`: self-signed).
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
}

pub fn evaluate(
    now_unix: i64,
    min_validity: Duration,
    policy: CertificatePolicy,
    facts: &Result<CertificateFacts, String>,
) -> GateResult {
    let c = match facts {
        Ok(c) => c,
        Err(e) => return GateResult::fail(format!("cannot read the certificate: {e}")),
    };
    if now_unix < c.not_before {
        return GateResult::fail(format!(
            "{} not valid before {} (in {})",
            c.subject,
            c.not_before,
            human(c.not_before - now_unix)
        ));
    }
    let left = c.not_after - now_unix;
    if left <= 0 {
        return GateResult::fail(format!("{} expired {} ago", c.subject, human(-left)));
    }
    let threshold = min_validity.as_secs() as i64;
    if left < threshold {
        let reason = format!(
            "{} expires in {}, below the {} threshold",
            c.subject,
            human(left),
            human(threshold)
        );
        return match policy {
            CertificatePolicy::Deny => GateResult::fail(reason),
            CertificatePolicy::Warn => GateResult::warn(format!("{reason} (policy warn)")),
        };
    }
    GateResult::pass(format!("{} valid for {}", c.subject, human(left)))
}

/// "29d 23h", "5h 3m", "42s": coarse, for operators.
fn human(secs: i64) -> String {
    let (d, h, m) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86400;
    const NOW: i64 = 1_800_000_000;
    const THIRTY_DAYS: Duration = Duration::from_secs(30 * 86400);

    fn cert(days_left: i64) -> Result<CertificateFacts, String> {
        Ok(CertificateFacts {
            subject: "CN=alpha".into(),
            issuer: "CN=zone CA".into(),
            not_before: NOW - DAY,
            not_after: NOW + days_left * DAY,
        })
    }

    fn link(
        role: ChainRole,
        path: &str,
        subject: &str,
        issuer: &str,
        days_left: i64,
    ) -> ChainCertificate {
        ChainCertificate {
            role,
            path: path.into(),
            facts: Ok(CertificateFacts {
                subject: subject.into(),
                issuer: issuer.into(),
                not_before: NOW - DAY,
                not_after: NOW + days_left * DAY,
            }),
        }
    }

    /// CN=alpha in /s/cert.pem, issued by `issuer`.
    fn leaf(issuer: &str, days_left: i64) -> ChainCertificate {
        link(
            ChainRole::Leaf,
            "/s/cert.pem",
            "CN=alpha",
            issuer,
            days_left,
        )
    }

    /// A self-signed CA in /s/ca.pem.
    fn ca(subject: &str, days_left: i64) -> ChainCertificate {
        link(ChainRole::Ca, "/s/ca.pem", subject, subject, days_left)
    }

    fn leaf_only(days_left: i64) -> Vec<ChainCertificate> {
        vec![link(
            ChainRole::Leaf,
            "/s/cert.pem",
            "CN=alpha",
            "CN=zone CA",
            days_left,
        )]
    }

    #[test]
    fn a_ca_below_the_threshold_closes_the_gate_while_the_leaf_is_fine() {
        let chain = [leaf("CN=zone CA", 365), ca("CN=zone CA", 10)];
        let r = evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &chain);
        assert_eq!(
            r,
            GateResult::fail(
                "CA CN=zone CA (/s/ca.pem) expires in 10d 0h, below the 30d 0h threshold"
            )
        );
        let r = evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Warn, &chain);
        assert_eq!(
            r,
            GateResult::warn(
                "CA CN=zone CA (/s/ca.pem) expires in 10d 0h, below the 30d 0h threshold (policy warn)"
            )
        );
    }

    #[test]
    fn an_expired_intermediate_fails_under_either_policy_and_the_first_failure_is_named() {
        let chain = [
            leaf("CN=zone CA", 365),
            link(
                ChainRole::Intermediate,
                "/s/cert.pem",
                "CN=site issuing CA",
                "CN=zone CA",
                -1,
            ),
            ca("CN=zone CA", 5),
        ];
        for policy in [CertificatePolicy::Deny, CertificatePolicy::Warn] {
            assert_eq!(
                evaluate_chain(NOW, THIRTY_DAYS, policy, &chain),
                GateResult::fail("intermediate CN=site issuing CA (/s/cert.pem) expired 1d 0h ago")
            );
        }
    }

    #[test]
    fn a_failing_leaf_outranks_a_warning_ca_and_a_fine_chain_names_the_shortest_ca() {
        let chain = [leaf("CN=zone CA", 10), ca("CN=zone CA", 20)];
        let r = evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &chain);
        assert_eq!(
            r.reason,
            "CN=alpha expires in 10d 0h, below the 30d 0h threshold"
        );
        let chain = [
            leaf("CN=zone CA", 365),
            ca("CN=old CA", 400),
            ca("CN=new CA", 3650),
        ];
        assert_eq!(
            evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &chain),
            GateResult::pass("CN=alpha valid for 365d 0h; CA CN=old CA valid for 400d 0h")
        );
    }

    #[test]
    fn a_ca_the_leaf_does_not_chain_to_only_warns() {
        // A rollover in progress: the leaf is from the new CA, the old one
        // (10 days left) is still in the bundle.
        let chain = [
            leaf("CN=new CA", 365),
            ca("CN=old CA", 10),
            ca("CN=new CA", 3650),
        ];
        assert_eq!(relied_on(&chain), vec![true, false, true]);
        let r = evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &chain);
        assert_eq!(
            r,
            GateResult::warn(
                "CA CN=old CA (/s/ca.pem) expires in 10d 0h, below the 30d 0h threshold; \
                 not in the chain of /s/cert.pem, so it does not gate (remove it once a CA rollover is done)"
            )
        );
        // Through an intermediate in the bundle to its root.
        let chain = [
            leaf("CN=issuing", 365),
            ca("CN=root", 10),
            link(ChainRole::Ca, "/s/ca.pem", "CN=issuing", "CN=root", 3650),
            ca("CN=peer zone", 3650),
        ];
        assert_eq!(relied_on(&chain), vec![true, true, true, false]);
        assert!(!evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &chain).passes());
        // A chain that leads to none of the bundle's CAs: all of them gate.
        let chain = [leaf("CN=elsewhere", 365), ca("CN=zone CA", 10)];
        assert_eq!(relied_on(&chain), vec![true, true]);
        assert!(!evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &chain).passes());
    }

    #[test]
    fn an_unreadable_ca_bundle_fails_naming_the_file() {
        let chain = [
            leaf("CN=zone CA", 365),
            ChainCertificate {
                role: ChainRole::Ca,
                path: "/s/ca.pem".into(),
                facts: Err("/s/ca.pem: PEM block 1 is \"PRIVATE KEY\", not CERTIFICATE".into()),
            },
        ];
        assert_eq!(
            evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Warn, &chain),
            GateResult::fail(
                "cannot read the CA certificates of /s/ca.pem: /s/ca.pem: PEM block 1 is \"PRIVATE KEY\", not CERTIFICATE"
            )
        );
        assert!(!evaluate_chain(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &[]).passes());
    }

    #[test]
    fn long_validity_passes_under_both_policies() {
        for policy in [CertificatePolicy::Deny, CertificatePolicy::Warn] {
            let r = evaluate(NOW, THIRTY_DAYS, policy, &cert(365));
            assert_eq!(r, GateResult::pass("CN=alpha valid for 365d 0h"));
        }
    }

    #[test]
    fn below_threshold_denies_or_warns_per_policy() {
        let r = evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &cert(10));
        assert!(!r.passes());
        assert_eq!(
            r.reason,
            "CN=alpha expires in 10d 0h, below the 30d 0h threshold"
        );
        let r = evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Warn, &cert(10));
        assert_eq!(r.verdict, bsfg_mgmt::Verdict::Warn);
        assert!(r.passes());
        assert!(r.reason.ends_with("(policy warn)"));
    }

    #[test]
    fn expired_or_not_yet_valid_fails_even_under_warn() {
        let r = evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Warn, &cert(-2));
        assert_eq!(r, GateResult::fail("CN=alpha expired 2d 0h ago"));
        let early = Ok(CertificateFacts {
            subject: "CN=alpha".into(),
            issuer: "CN=zone CA".into(),
            not_before: NOW + 3600,
            not_after: NOW + 400 * DAY,
        });
        assert!(!evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Warn, &early).passes());
    }

    #[test]
    fn unreadable_fails() {
        let r = evaluate(
            NOW,
            THIRTY_DAYS,
            CertificatePolicy::Deny,
            &Err("no such file".into()),
        );
        assert!(r.reason.contains("no such file"));
    }

    #[test]
    fn missing_credentials_fail_first_and_each_is_named() {
        let c = |name: &str, path: &str, problem: Option<&str>| CredentialFacts {
            name: name.into(),
            path: path.into(),
            problem: problem.map(str::to_owned),
        };
        let creds = [
            c("tls_certificate", "/s/cert.pem", None),
            c("tls_private_key", "/s/key.pem", Some("no such file")),
            c("nats_system_password", "/s/nats-pw", Some("empty")),
        ];
        for policy in [CertificatePolicy::Deny, CertificatePolicy::Warn] {
            let r = evaluate_with_credentials(NOW, THIRTY_DAYS, policy, &creds, &leaf_only(365));
            assert_eq!(
                r,
                GateResult::fail(
                    "missing controller credentials: tls_private_key /s/key.pem (no such file); \
                     nats_system_password /s/nats-pw (empty)"
                )
            );
        }
        let one = [c("tls_ca", "/s/ca.pem", Some("no such file"))];
        assert_eq!(
            evaluate_with_credentials(
                NOW,
                THIRTY_DAYS,
                CertificatePolicy::Deny,
                &one,
                &leaf_only(365)
            )
            .reason,
            "missing controller credential: tls_ca /s/ca.pem (no such file)"
        );
        let all = [c("tls_ca", "/s/ca.pem", None)];
        let r = evaluate_with_credentials(
            NOW,
            THIRTY_DAYS,
            CertificatePolicy::Deny,
            &all,
            &leaf_only(365),
        );
        assert_eq!(r, GateResult::pass("CN=alpha valid for 365d 0h"));
    }

    #[test]
    fn exactly_at_the_threshold_passes() {
        let r = evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &cert(30));
        assert!(r.passes());
        assert_eq!(r.verdict, bsfg_mgmt::Verdict::Pass);
    }
}
