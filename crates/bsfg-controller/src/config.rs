//! Loading the configuration: a TOML file, then `BSFG_*` environment overrides.

use bsfg_core::config::{ControllerConfig, is_config_override, key_path};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use std::path::Path;

/// Loads and checks the configuration. The error is one line naming the key.
pub fn load(path: &Path) -> Result<ControllerConfig, String> {
    if !path.is_file() {
        return Err(format!(
            "configuration file {} does not exist",
            path.display()
        ));
    }
    let figment = Figment::new()
        .merge(Toml::file(path))
        // BSFG_LISTEN__ADDRESS → listen.address; other tools' BSFG_ variables
        // (BSFG_CONFIG names the file itself) are not keys.
        .merge(
            Env::prefixed("BSFG_")
                .filter(|k| is_config_override(k.as_str()))
                .split("__"),
        );
    from_figment(figment).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses and checks a TOML text alone, without the environment.
pub fn from_toml(text: &str) -> Result<ControllerConfig, String> {
    from_figment(Figment::new().merge(Toml::string(text)))
}

fn from_figment(figment: Figment) -> Result<ControllerConfig, String> {
    let mut config: ControllerConfig = figment.extract().map_err(one_line)?;
    config.check().map_err(|e| e.to_string())?;
    Ok(config)
}

/// figment errors can chain; operators need the first, with its key path.
fn one_line(e: figment::Error) -> String {
    let key = if e.path.is_empty() {
        String::new()
    } else {
        format!("key `{}`: ", key_path(e.path.iter().map(String::as_str)))
    };
    let first = e
        .into_iter()
        .next()
        .map(|e| e.kind.to_string())
        .unwrap_or_default();
    bsfg_core::config::one_line(&format!("{key}{first}"))
}
