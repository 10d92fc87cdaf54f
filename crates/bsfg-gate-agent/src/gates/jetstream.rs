//! Gate 2: the local JetStream answers: the server's own health endpoint
//! (`/healthz?js-enabled-only=true`) says JetStream is enabled, and the NATS
//! client connection to the local server answers a ping.
//!
//! Deliberately local: a JetStream API request would be answered by the meta
//! leader, which makes it a quorum check (gate 3). The keepalived health
//! check uses this gate alone, so a meta-leader election (Gamma crashing)
//! does not put both service hosts into FAULT at once.

use super::GateResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetstreamFacts {
    /// `/healthz?js-enabled-only=true`: HTTP status and body, or the error.
    pub healthz: Result<(u16, String), String>,
    /// The client connection's ping round trip, or the error.
    pub ping: Result<(), String>,
}

pub fn evaluate(facts: &JetstreamFacts) -> GateResult {
    match &facts.healthz {
        Err(e) => return GateResult::fail(format!("monitoring endpoint unreachable: {e}")),
        Ok((200, _)) => {}
        Ok((status, body)) => {
            let detail = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| body.trim().chars().take(200).collect());
            return GateResult::fail(format!("healthz {status}: {detail}"));
        }
    }
    match &facts.ping {
        Err(e) => GateResult::fail(format!("NATS client protocol not answering: {e}")),
        Ok(()) => GateResult::pass("JetStream enabled, server answering"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_only_when_health_and_ping_succeed() {
        let ok = JetstreamFacts {
            healthz: Ok((200, r#"{"status":"ok"}"#.into())),
            ping: Ok(()),
        };
        assert!(evaluate(&ok).passes());

        let unhealthy = JetstreamFacts {
            healthz: Ok((
                503,
                r#"{"status":"unavailable","status_code":503,"error":"JetStream is not enabled"}"#
                    .into(),
            )),
            ..ok.clone()
        };
        let r = evaluate(&unhealthy);
        assert!(!r.passes());
        assert_eq!(r.reason, "healthz 503: JetStream is not enabled");

        let down = JetstreamFacts {
            healthz: Err("connection refused".into()),
            ..ok.clone()
        };
        assert!(evaluate(&down).reason.contains("connection refused"));

        let silent = JetstreamFacts {
            ping: Err("timed out".into()),
            ..ok
        };
        let r = evaluate(&silent);
        assert!(!r.passes());
        assert!(r.reason.contains("timed out"));
    }
}
