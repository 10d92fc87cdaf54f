//! The client identity (`--cert --key --ca`), the endpoint and defaults,
//! from (first wins) flags, `BSFG_CLI_*` environment variables, and a small
//! TOML config file: `--config`/`BSFG_CLI_CONFIG`, else
//! `$XDG_CONFIG_HOME/bsfgctl/config.toml` (`~/.config/...`), else
//! `/etc/bsfg/bsfgctl.toml`, whichever exists.
//!
//! Only `BSFG_CLI_*` variables are read: plain `BSFG_*` variables configure
//! the controller and the gate agent and are left alone.

use crate::exit::{CliError, Result};
use bsfg_core::config::TlsFiles;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config file. Every key is optional; relative paths are relative to
/// the file's directory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `https://<VIP>:9443`
    pub endpoint: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    /// `envelope.from_zone` of appended facts (this zone's name).
    pub from_zone: Option<String>,
    /// The zone description (`/etc/bsfg/zone.json` on the appliance).
    pub zone_file: Option<PathBuf>,
}

impl ConfigFile {
    pub fn parse(text: &str, dir: &Path) -> std::result::Result<ConfigFile, String> {
        let mut c: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        for p in [&mut c.cert, &mut c.key, &mut c.ca, &mut c.zone_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(c)
    }

    /// The explicit file (must exist), else the first default that exists.
    pub fn load(explicit: Option<&Path>) -> Result<ConfigFile> {
        let path = match explicit {
            Some(p) => Some(p.to_owned()),
            None => default_paths().into_iter().find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::Usage(format!("config file {}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        ConfigFile::parse(&text, dir)
            .map_err(|e| CliError::Usage(format!("config file {}: {e}", path.display())))
    }
}

fn default_paths() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        v.push(PathBuf::from(x).join("bsfgctl/config.toml"));
    } else if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        v.push(PathBuf::from(h).join(".config/bsfgctl/config.toml"));
    }
    v.push(PathBuf::from("/etc/bsfg/bsfgctl.toml"));
    v
}

/// Flags (with their `BSFG_CLI_*` fallbacks) that name the endpoint and identity.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// The zone's service endpoint, `https://<VIP>:<port>`.
    #[arg(long, env = "BSFG_CLI_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Client certificate (PEM), issued by the zone CA.
    #[arg(long, env = "BSFG_CLI_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "BSFG_CLI_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The zone CA (PEM): the server certificate must chain to it.
    #[arg(long, env = "BSFG_CLI_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// A resolved client: endpoint and identity files, all present.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub endpoint: String,
    pub tls: TlsFiles,
}

impl ClientArgs {
    /// Flags/env first, then the config file; `fallback_endpoint` (from the
    /// zone file) last. Names what is missing.
    pub fn resolve(&self, file: &ConfigFile, fallback_endpoint: Option<&str>) -> Result<Client> {
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| file.endpoint.clone())
            .or_else(|| fallback_endpoint.map(str::to_owned))
            .ok_or_else(|| {
                CliError::Usage(
                    "no endpoint: pass --endpoint https://<VIP>:9443 (or BSFG_CLI_ENDPOINT, or `endpoint` in the config file)".into(),
                )
            })?;
        bsfg_client::Endpoint::parse(&endpoint).map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Client {
            endpoint,
            tls: self.tls(file)?,
        })
    }

    pub fn tls(&self, file: &ConfigFile) -> Result<TlsFiles> {
        let pick = |flag: &Option<PathBuf>, conf: &Option<PathBuf>, name: &str, env: &str| {
            let p = flag.clone().or_else(|| conf.clone()).ok_or_else(|| {
                CliError::Usage(format!(
                    "no {name} file: pass --{name} FILE (or {env}, or `{name}` in the config file)"
                ))
            })?;
            if !p.is_file() {
                return Err(CliError::Usage(format!(
                    "--{name} {}: no such file",
                    p.display()
                )));
            }
            Ok(p)
        };
        Ok(TlsFiles {
            certificate: pick(&self.cert, &file.cert, "cert", "BSFG_CLI_CERT")?,
            private_key: pick(&self.key, &file.key, "key", "BSFG_CLI_KEY")?,
            ca: pick(&self.ca, &file.ca, "ca", "BSFG_CLI_CA")?,
        })
    }

    /// Whether any identity file is given anywhere (zone status uses the
    /// identity only when present).
    pub fn has_identity(&self, file: &ConfigFile) -> bool {
        (self.cert.is_some() || file.cert.is_some())
            && (self.key.is_some() || file.key.is_some())
            && (self.ca.is_some() || file.ca.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_paths_are_relative_to_its_directory_and_unknown_keys_refused() {
        let c = ConfigFile::parse(
            "endpoint = \"https://10.0.0.1:9443\"\ncert = \"me.pem\"\nca = \"/etc/ca.pem\"\n",
            Path::new("/home/op/.config/bsfgctl"),
        )
        .unwrap();
        assert_eq!(
            c.cert,
            Some(PathBuf::from("/home/op/.config/bsfgctl/me.pem"))
        );
        assert_eq!(c.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert!(ConfigFile::parse("endpont = \"x\"", Path::new("/")).is_err());
    }

    #[test]
    fn flags_win_over_the_config_file_and_missing_pieces_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.pem", "b.pem", "k.pem", "ca.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let file = ConfigFile {
            endpoint: Some("https://10.0.0.1:9443".into()),
            cert: Some(dir.path().join("a.pem")),
            key: Some(dir.path().join("k.pem")),
            ca: Some(dir.path().join("ca.pem")),
            ..Default::default()
        };
        let args = ClientArgs {
            cert: Some(dir.path().join("b.pem")),
            ..Default::default()
        };
        let c = args.resolve(&file, None).unwrap();
        assert_eq!(c.endpoint, "https://10.0.0.1:9443");
        assert_eq!(c.tls.certificate, dir.path().join("b.pem"));
        assert_eq!(c.tls.private_key, dir.path().join("k.pem"));

        let err = ClientArgs::default()
            .resolve(&ConfigFile::default(), Some("https://10.0.0.2:9443"))
            .unwrap_err();
        assert!(err.to_string().contains("--cert"), "{err}");
        assert_eq!(err.code(), crate::exit::USAGE);
        let err = ClientArgs::default()
            .resolve(&ConfigFile::default(), None)
            .unwrap_err();
        assert!(err.to_string().contains("--endpoint"), "{err}");
    }
}
