//! Which `BSFG_*` environment variables are configuration overrides.
//!
//! The controller and the gate agent read `BSFG_<SECTION>__<KEY>` on top of
//! their TOML file, and refuse unknown keys. Other BSFG tools use the same
//! prefix for their own settings (bsfgctl's `BSFG_CLI_*` on an operator's
//! shell, the simulator's `BSFG_REPO`): those are not keys, or running
//! `bsfg-gate-agent status` in such a shell would fail on a key it never had.

/// Whole names (after `BSFG_`) that belong to other tools.
pub const FOREIGN_NAMES: &[&str] = &[
    // --config of the controller; the test suite's binary directory.
    "CONFIG",
    "BIN_DIR",
    // bsfg-zonesim: the repository, the container cache, the Debian mirror.
    "REPO",
    "CONTAINER_CACHE",
    "DEBIAN_MIRROR",
];

/// Prefixes (after `BSFG_`) of other tools' variables: bsfgctl, bsfgctl
/// backup, the simulator, the power feed, the fuzzers.
pub const FOREIGN_PREFIXES: &[&str] = &["CLI_", "BACKUP_", "ZONESIM_", "POWERCUT_", "FUZZ_"];

/// Whether `BSFG_<name>` is a configuration override of the controller or
/// the gate agent (`name` as figment gives it: after the prefix, any case).
pub fn is_config_override(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    !FOREIGN_NAMES.contains(&name.as_str()) && !FOREIGN_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_tools_variables_are_not_overrides() {
        for name in [
            "CLI_ENDPOINT",
            "cli_zone_file",
            "REPO",
            "ZONESIM_INIT",
            "BACKUP_NATS_URL",
            "CONFIG",
            "BIN_DIR",
        ] {
            assert!(!is_config_override(name), "{name}");
        }
        for name in [
            "LISTEN__ADDRESS",
            "controller__ready_timeout",
            "NODE",
            "CLIENT__X",
        ] {
            assert!(is_config_override(name), "{name}");
        }
    }
}
