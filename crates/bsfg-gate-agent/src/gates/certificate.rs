//! Gate 5: the controller's certificate is valid for at least the policy
//! threshold. Under policy `deny` a certificate below the threshold fails
//! the gate; under `warn` it passes with a warning (visible in status, logs
//! and as verdict `warn`). An expired or not-yet-valid certificate fails
//! under either policy: the controller could not complete a handshake.

use super::GateResult;
use crate::config::CertificatePolicy;
use std::time::Duration;

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
    fn exactly_at_the_threshold_passes() {
        let r = evaluate(NOW, THIRTY_DAYS, CertificatePolicy::Deny, &cert(30));
        assert!(r.passes());
        assert_eq!(r.verdict, bsfg_mgmt::Verdict::Pass);
    }
}
