//! Gate 5: the controller's credentials are all present, and its
//! certificate is valid for at least the policy threshold.
//!
//! A missing credential (certificate, key, CA, the NATS system user's
//! password: `controller.credentials`) fails the gate under either policy,
//! naming each missing path: a host deployed before its secrets exist keeps
//! running its agent, says exactly what to install, and promotes once the
//! files appear. Under policy `deny` a certificate below the threshold fails
//! the gate; under `warn` it passes with a warning (visible in status, logs
//! and as verdict `warn`). An expired or not-yet-valid certificate fails
//! under either policy: the controller could not complete a handshake.

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
    certificate: &Result<CertificateFacts, String>,
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
    evaluate(now_unix, min_validity, policy, certificate)
}

/// The validity window of the leaf certificate, in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub subject: String,
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
            not_before: NOW - DAY,
            not_after: NOW + days_left * DAY,
        })
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
            let r = evaluate_with_credentials(NOW, THIRTY_DAYS, policy, &creds, &cert(365));
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
            evaluate_with_credentials(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &one, &cert(365))
                .reason,
            "missing controller credential: tls_ca /s/ca.pem (no such file)"
        );
        let all = [c("tls_ca", "/s/ca.pem", None)];
        let r =
            evaluate_with_credentials(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &all, &cert(365));
        assert_eq!(r, GateResult::pass("CN=alpha valid for 365d 0h"));
    }

    #[test]
    fn exactly_at_the_threshold_passes() {
        let r = evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &cert(30));
        assert!(r.passes());
        assert_eq!(r.verdict, bsfg_mgmt::Verdict::Pass);
    }
}
