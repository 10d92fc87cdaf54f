//! Gate 6: the controller reports ready. The controller answers `/readyz`
//! with 200 only after it bound the VIP (never a wildcard), reached
//! JetStream and took the zone lease, and while it is not self-fenced;
//! otherwise 503 with `{"state": "...", "reason": "..."}`.

use super::GateResult;
use bsfg_mgmt::Readyz;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadinessFacts {
    /// The controller is not running here, so it was not asked.
    NotRunning,
    /// `/readyz` answered (status, body) or could not be reached.
    Asked(Result<(u16, String), String>),
}

pub fn evaluate(facts: &ReadinessFacts) -> GateResult {
    match facts {
        ReadinessFacts::NotRunning => GateResult::fail("controller not running"),
        ReadinessFacts::Asked(Err(e)) => {
            GateResult::fail(format!("controller management endpoint unreachable: {e}"))
        }
        ReadinessFacts::Asked(Ok((200, _))) => GateResult::pass("controller ready (bound the VIP)"),
        ReadinessFacts::Asked(Ok((status, body))) => {
            let detail = match serde_json::from_str::<Readyz>(body) {
                Ok(Readyz {
                    state,
                    reason: Some(r),
                }) if !r.is_empty() => format!("{state}: {r}"),
                Ok(Readyz { state, .. }) => state.to_string(),
                Err(_) => body.trim().chars().take(200).collect(),
            };
            GateResult::fail(format!("controller not ready ({status}): {detail}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_on_200() {
        assert!(evaluate(&ReadinessFacts::Asked(Ok((200, "{}".into())))).passes());
        let r = evaluate(&ReadinessFacts::Asked(Ok((
            503,
            r#"{"state":"starting","reason":"waiting for the lease: held by beta"}"#.into(),
        ))));
        assert!(!r.passes());
        assert_eq!(
            r.reason,
            "controller not ready (503): starting: waiting for the lease: held by beta"
        );
        assert!(!evaluate(&ReadinessFacts::NotRunning).passes());
        let r = evaluate(&ReadinessFacts::Asked(Err("connection refused".into())));
        assert!(r.reason.contains("connection refused"));
        let r = evaluate(&ReadinessFacts::Asked(Ok((500, "boom".into()))));
        assert_eq!(r.reason, "controller not ready (500): boom");
    }
}
