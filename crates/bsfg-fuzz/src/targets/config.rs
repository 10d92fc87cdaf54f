//! The controller's and the gate agent's TOML configuration, as loaded
//! (without the environment). The zone library renders both.
//!
//! Mode byte: bit 0 selects the gate agent.

use super::mode;
use crate::Outcome;
use bsfg_core::config::ControllerConfig;
use bsfg_gate_agent::config::AgentConfig;

pub fn run(data: &[u8]) -> Outcome {
    let (m, bytes) = mode(data);
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Rejected;
    };
    if m & 1 == 0 {
        controller(text)
    } else {
        agent(text)
    }
}

/// Loads a controller configuration and checks its invariants.
pub fn controller(text: &str) -> Outcome {
    match bsfg_controller::config::from_toml(text) {
        Err(e) => {
            assert_one_line_naming_a_key(&e);
            Outcome::Rejected
        }
        Ok(c) => {
            let again = toml::to_string(&c).expect("a loaded configuration renders as TOML");
            let back: ControllerConfig = bsfg_controller::config::from_toml(&again)
                .unwrap_or_else(|e| panic!("the rendered configuration is refused: {e}\n{again}"));
            assert_eq!(back, c, "TOML round trip changed the configuration");
            Outcome::Accepted
        }
    }
}

/// Loads a gate-agent configuration and checks its invariants.
pub fn agent(text: &str) -> Outcome {
    match bsfg_gate_agent::config::from_toml(text) {
        Err(e) => {
            assert!(!e.key.is_empty(), "a rejection without a key: {e}");
            assert_one_line_naming_a_key(&e.to_string());
            Outcome::Rejected
        }
        Ok(c) => {
            let again = toml::to_string(&c).expect("a loaded configuration renders as TOML");
            let back: AgentConfig = bsfg_gate_agent::config::from_toml(&again)
                .unwrap_or_else(|e| panic!("the rendered configuration is refused: {e}\n{again}"));
            assert_eq!(back, c, "TOML round trip changed the configuration");
            Outcome::Accepted
        }
    }
}

fn assert_one_line_naming_a_key(e: &str) {
    assert!(!e.trim().is_empty(), "a rejection without a reason");
    assert!(!e.contains('\n'), "a multi-line error: {e:?}");
}
