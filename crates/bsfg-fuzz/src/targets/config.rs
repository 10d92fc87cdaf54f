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
    check::<ControllerConfig, _>(text, bsfg_controller::config::from_toml)
}

/// Loads a gate-agent configuration and checks its invariants.
pub fn agent(text: &str) -> Outcome {
    check::<AgentConfig, _>(text, |t| {
        bsfg_gate_agent::config::from_toml(t).map_err(|e| {
            assert!(!e.key.is_empty(), "a rejection without a key: {e}");
            e.to_string()
        })
    })
}

/// Rejections are one line; an accepted configuration rendered back to TOML
/// loads to the same value.
fn check<C, L>(text: &str, load: L) -> Outcome
where
    C: serde::Serialize + PartialEq + std::fmt::Debug,
    L: Fn(&str) -> Result<C, String>,
{
    match load(text) {
        Err(e) => {
            assert_one_line_naming_a_key(&e);
            Outcome::Rejected
        }
        Ok(c) => {
            let again = toml::to_string(&c).expect("a loaded configuration renders as TOML");
            let back = load(&again)
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
