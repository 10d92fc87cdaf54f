//! Writes what the zone library names for every host (modules/lib/README.md,
//! "Per host the simulator must create"): the state directories, the
//! controller and gate-agent TOML, the nats-server JSON and keepalived.conf,
//! all byte-for-byte from the library's output.

use super::spec::HostSpec;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the simulator keeps one host's own files besides the library's.
#[derive(Debug, Clone)]
pub struct HostDirs {
    pub root: PathBuf,
    pub logs: PathBuf,
    pub nats_config: PathBuf,
    pub keepalived_dir: PathBuf,
    pub keepalived_config: PathBuf,
    pub credentials: PathBuf,
}

impl HostDirs {
    pub fn new(run_dir: &Path, host: &str) -> HostDirs {
        let root = run_dir.join(host);
        HostDirs {
            logs: root.join("logs"),
            nats_config: root.join("nats.json"),
            keepalived_dir: root.join("keepalived"),
            keepalived_config: root.join("keepalived").join("keepalived.conf"),
            credentials: root.join("credentials"),
            root,
        }
    }

    pub fn log(&self, daemon: &str) -> PathBuf {
        self.logs.join(format!("{daemon}.log"))
    }
}

/// `mkdir -p` with mode 0755: keepalived's script user must traverse the
/// run directory to read the agent's configuration.
pub fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        mkdir(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// TOML of a JSON document. JSON `null` has no TOML form; the library emits
/// none in daemon configurations, and one appearing is refused rather than
/// silently dropped.
pub fn toml_of(value: &serde_json::Value) -> Result<String> {
    fn reject_nulls(v: &serde_json::Value, path: &str) -> Result<()> {
        match v {
            serde_json::Value::Null => bail!("{path} is null, which TOML cannot express"),
            serde_json::Value::Object(m) => m
                .iter()
                .try_for_each(|(k, v)| reject_nulls(v, &format!("{path}.{k}"))),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| reject_nulls(v, &format!("{path}[{i}]"))),
            _ => Ok(()),
        }
    }
    reject_nulls(value, "config")?;
    toml::to_string(value).context("rendering TOML")
}

/// Creates the host's directories and configuration files.
pub fn write_host(host: &HostSpec, dirs: &HostDirs) -> Result<()> {
    for d in [
        &dirs.root,
        &dirs.logs,
        &host.paths.jetstream,
        &host.paths.opt,
        &host.paths.agent_runtime,
    ] {
        mkdir(d)?;
    }
    if host.runs.artifacts {
        mkdir(&host.paths.artifacts)?;
    }
    write(
        &dirs.nats_config,
        &serde_json::to_string_pretty(&host.nats.settings)?,
        0o644,
    )?;
    if let Some(c) = &host.controller {
        write(&host.paths.controller_config, &toml_of(&c.config)?, 0o644)?;
    }
    if let Some(a) = &host.gate_agent {
        write(&host.paths.agent_config, &toml_of(&a.config)?, 0o644)?;
    }
    if let Some(k) = &host.keepalived {
        mkdir(&dirs.keepalived_dir)?;
        write(&dirs.keepalived_config, &k.config_text, 0o644)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toml_keeps_nested_tables_and_refuses_nulls() {
        let v = json!({
            "zone": "plant-a",
            "lease": {"ttl": "1s", "enabled": true},
            "listen": {"address": "10.20.0.100:9443"},
            "classes": {"operational": {"append": ["mes-producer"], "max_age": "7d"}},
            "limits": {}
        });
        let t = toml_of(&v).unwrap();
        let back: toml::Value = toml::from_str(&t).unwrap();
        assert_eq!(back["lease"]["ttl"].as_str(), Some("1s"));
        assert_eq!(
            back["classes"]["operational"]["append"][0].as_str(),
            Some("mes-producer")
        );
        assert!(back["limits"].as_table().unwrap().is_empty());
        let e = toml_of(&json!({"a": {"b": null}})).unwrap_err().to_string();
        assert!(e.contains("config.a.b is null"), "{e}");
    }
}
