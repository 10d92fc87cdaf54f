//! Keepalived notifications: lines of the notify FIFO (split as the agent's
//! line reader splits them) and the body of the agent's `POST /notify`.

use crate::Outcome;
use bsfg_gate_agent::keepalived::{Notification, parse_line};
use bsfg_mgmt::VrrpState;

pub fn run(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let mut accepted = false;
    // The FIFO reader: one notification per line, blank lines skipped.
    for line in text.lines() {
        if !line.trim().is_empty() {
            accepted |= check(line);
        }
    }
    // `POST /notify`: the whole body is one notification.
    accepted |= check(&text);
    if accepted {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

fn check(line: &str) -> bool {
    match parse_line(line) {
        Err(why) => {
            assert!(!why.trim().is_empty(), "a rejection without a reason");
            false
        }
        Ok(n) => {
            check_accepted(&n);
            true
        }
    }
}

fn check_accepted(n: &Notification) {
    assert!(
        n.kind == "INSTANCE" || n.kind == "GROUP",
        "kind {:?}",
        n.kind
    );
    assert!(!n.name.is_empty());
    assert!(!n.raw_state.is_empty());
    let state = VrrpState::ALL
        .into_iter()
        .find(|s| s.name() == n.raw_state && *s != VrrpState::Unknown);
    assert_eq!(n.state, state, "state {:?} for {:?}", n.state, n.raw_state);
    // The line the agent logs and reports reads back as the same notification.
    let line = n.to_line();
    assert!(!line.contains('\n'), "to_line spans lines: {line:?}");
    assert_eq!(
        parse_line(&line).as_ref(),
        Ok(n),
        "{line:?} does not round-trip"
    );
}
