//! Gate 7: the zone controller lease permits this host: the key is vacant,
//! expired (its revision unchanged for a full TTL as observed here), or held
//! by this host. The controller takes and renews the lease itself; the agent
//! only reads it, so a host that holds the VIP while another host's
//! controller holds the lease (one-way VRRP loss) refuses to promote and says
//! `lease held by <host> (N ms left)`.

use super::GateResult;
use bsfg_core::lease::LeaseView;

/// Returns the result and whether it failed because another host holds a live lease.
pub fn evaluate(host: &str, view: &Result<LeaseView, String>) -> (GateResult, bool) {
    match view {
        Err(e) => (GateResult::fail(format!("lease unknown: {e}")), false),
        Ok(v) => match v.permits(host) {
            Err(reason) => (GateResult::fail(reason), true),
            Ok(()) => {
                let reason = match (&v.holder, v.remaining.is_zero()) {
                    (None, _) => "lease vacant".to_owned(),
                    (Some(h), _) if h == host => format!("lease held by this host ({h})"),
                    (Some(h), true) => format!("lease of {h} expired"),
                    (Some(h), false) => format!("lease held by {h}"),
                };
                (GateResult::pass(reason), false)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn view(holder: Option<&str>, remaining_ms: u64) -> Result<LeaseView, String> {
        Ok(LeaseView {
            holder: holder.map(str::to_owned),
            revision: Some(7),
            remaining: Duration::from_millis(remaining_ms),
        })
    }

    #[test]
    fn held_elsewhere_refuses_with_the_holder_named() {
        let (r, elsewhere) = evaluate("beta", &view(Some("alpha"), 640));
        assert!(!r.passes());
        assert!(elsewhere);
        assert_eq!(r.reason, "lease held by alpha (640 ms left)");
    }

    #[test]
    fn vacant_expired_or_ours_permits() {
        assert_eq!(evaluate("beta", &view(None, 0)).0.reason, "lease vacant");
        assert_eq!(
            evaluate("beta", &view(Some("alpha"), 0)).0.reason,
            "lease of alpha expired"
        );
        let (r, elsewhere) = evaluate("alpha", &view(Some("alpha"), 900));
        assert!(r.passes() && !elsewhere);
        assert_eq!(r.reason, "lease held by this host (alpha)");
    }

    #[test]
    fn unreadable_fails_without_blaming_another_host() {
        let (r, elsewhere) = evaluate("alpha", &Err("no responders".into()));
        assert!(!r.passes());
        assert!(!elsewhere);
    }
}
