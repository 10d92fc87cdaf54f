//! What the drills that roll out PKI files share: the simulator's CA as
//! `bsfgctl pki`'s CA directory, `bsfgctl` itself, each host's staged
//! files onto the host, a client's files, and the certificate each daemon
//! serves over a real TLS connection.

use super::Ctx;
use crate::load;
use crate::netns;
use crate::observe::served_certificate::{self, Listener, Served};
use crate::zone::Zone;
use crate::zone::credentials::nats_route_identity;
use anyhow::{Context, Result, bail};
use bsfg_core::config::TlsFiles;
use bsfg_pki::files::{CERTIFICATE_MODE, KEY_MODE};
use bsfg_pki::issue::Target;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) const PEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// `bsfgctl pki` on the drill's CA directory (exported from the
/// simulator's CA) with the zone description of the simulator.
pub(super) struct CaDirectory {
    pub dir: PathBuf,
    zone_file: PathBuf,
}

impl CaDirectory {
    /// Exports the zone's CA and certificates into `work/ca`.
    pub fn export(z: &Zone, work: &Path) -> Result<CaDirectory> {
        let creds = z
            .credentials()
            .context("no CA in this process (certificates are made by `up`)")?;
        let dir = work.join("ca");
        creds.export_ca_dir(&z.spec, &dir)?;
        let zone_file = write_zone_file(z, work)?;
        Ok(CaDirectory { dir, zone_file })
    }

    /// `bsfgctl pki <sub> --zone-file .. [--dir ..] <rest>`: its output, or
    /// an error with it when the exit status is not 0. `with_dir`: the
    /// subcommand takes `--dir` (all but `check --host`).
    pub fn pki(&self, sub: &[&str], rest: &[&str], with_dir: bool) -> Result<String> {
        let zone_file = self.zone_file.display().to_string();
        let dir = self.dir.display().to_string();
        let mut full = vec!["pki"];
        full.extend_from_slice(sub);
        full.extend(["--zone-file", zone_file.as_str()]);
        if with_dir {
            full.extend(["--dir", dir.as_str()]);
        }
        full.extend_from_slice(rest);
        bsfgctl(&full)
    }

    /// `bsfgctl pki <sub> --zone-file .. --dir .. <rest>`: its exit code
    /// and output, whatever the code.
    pub fn pki_exit(&self, sub: &[&str], rest: &[&str]) -> Result<(Option<i32>, String)> {
        let zone_file = self.zone_file.display().to_string();
        let dir = self.dir.display().to_string();
        let mut full = vec!["pki"];
        full.extend_from_slice(sub);
        full.extend(["--zone-file", zone_file.as_str(), "--dir", dir.as_str()]);
        full.extend_from_slice(rest);
        bsfgctl_exit(&full)
    }

    /// `bsfgctl --json pki <sub> ..`, parsed.
    pub fn pki_json(&self, sub: &[&str], rest: &[&str]) -> Result<serde_json::Value> {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(rest);
        let out = self.pki(sub, &with_json, true)?;
        serde_json::from_str(&out).with_context(|| format!("bsfgctl pki {sub:?} --json: {out}"))
    }

    /// A certificate of the CA directory (PEM).
    pub fn certificate(&self, name: &str) -> Result<String> {
        let p = self.dir.join("certificates").join(format!("{name}.pem"));
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    }

    pub fn staging(&self) -> PathBuf {
        self.dir.join("hosts")
    }
}

/// A TLS listener of the zone and the certificate it presents.
pub(super) struct Listening {
    pub what: String,
    /// Its certificate's name in the plan (`controller`, `nats-route-<host>`).
    pub certificate: String,
    pub served: Served,
    /// The certificate installed for it (PEM).
    pub installed: String,
}

/// What serves TLS in the zone, with the certificate it presents and the
/// one installed for it: the controller on the VIP, each host's route port.
pub(super) async fn served(z: &Zone) -> Result<Vec<Listening>> {
    let mut out = Vec::new();
    let holders = z.vip_holders().await?;
    let [active] = holders.as_slice() else {
        bail!("the VIP is on {holders:?}");
    };
    out.push(Listening {
        what: format!("controller on {active}"),
        certificate: "controller".into(),
        served: peek_controller(z, z.client_tls().0)
            .await
            .map_err(anyhow::Error::msg)?,
        installed: std::fs::read_to_string(&z.spec.host(active).paths.tls.certificate)?,
    });
    for h in z.spec.host_names() {
        let route = &z.spec.host(h).paths.nats_route;
        let tls = TlsFiles {
            certificate: route.certificate.clone(),
            private_key: route.private_key.clone(),
            ca: route.ca.clone(),
        };
        let installed = std::fs::read_to_string(&tls.certificate)?;
        let addr = SocketAddr::new(z.spec.host(h).address.into(), z.spec.ports.nats_cluster);
        let name = nats_route_identity(&z.spec.zone);
        let served = z
            .in_ns(h, move || async move {
                served_certificate::peek(Listener::NatsRoute, addr, &name, &tls, PEEK_TIMEOUT).await
            })
            .await?
            .map_err(|e| anyhow::anyhow!("nats-server route port on {h}: {e}"))?;
        out.push(Listening {
            what: format!("nats-server routes on {h}"),
            certificate: format!("nats-route-{h}"),
            served,
            installed,
        });
    }
    Ok(out)
}

/// The controller's certificate on the VIP, seen from the client network.
pub(super) async fn peek_controller(z: &Zone, tls: TlsFiles) -> Result<Served, String> {
    let addr = SocketAddr::new(z.spec.vip.address.into(), z.spec.ports.controller);
    let name = z.spec.vip.address.to_string();
    z.in_ns(netns::CLIENT, move || async move {
        served_certificate::peek(Listener::Controller, addr, &name, &tls, PEEK_TIMEOUT).await
    })
    .await
    .map_err(|e| format!("{e:#}"))?
}

/// Checks (as `name`) that an append as `tls` is acknowledged, and counts
/// the fact `id` among the acknowledged ones when it is.
pub(super) async fn check_append(z: &Zone, c: &mut Ctx, tls: TlsFiles, id: String, name: &str) {
    let appended = append_as(z, tls, &id).await;
    c.check(
        name,
        appended.is_ok(),
        appended
            .as_ref()
            .map_or_else(|e| format!("{e:#}"), |()| id.clone()),
    );
    if appended.is_ok() {
        c.extra_acked.push(id);
    }
}

async fn append_as(z: &Zone, tls: TlsFiles, id: &str) -> Result<()> {
    let endpoint = z.spec.endpoint();
    let req = load::fact_request(&z.workload, "pki-rollout", id, 0, 1_780_000_000_000);
    z.in_ns(netns::CLIENT, move || async move {
        load::append_one(&endpoint, &tls, req, Duration::from_secs(30)).await
    })
    .await??;
    Ok(())
}

/// The zone description `bsfgctl` reads (the operator view the simulator
/// writes), with the simulator's own certificate plan.
fn write_zone_file(z: &Zone, work: &Path) -> Result<PathBuf> {
    let from = z.run_dir.join("client").join("zone.json");
    let text = std::fs::read_to_string(&from)
        .with_context(|| format!("reading {} (the operator view)", from.display()))?;
    let mut zone: serde_json::Value = serde_json::from_str(&text)?;
    zone["pki"] = serde_json::to_value(&z.spec.pki)?;
    let to = work.join("zone.json");
    std::fs::write(&to, serde_json::to_vec_pretty(&zone)?)
        .with_context(|| format!("writing {}", to.display()))?;
    Ok(to)
}

/// Copies `host`'s files from the staging tree of `bsfgctl pki` onto the
/// host (its root is the machine's: the plan's paths are the simulator's).
pub(super) fn install_staged(
    spec: &crate::zone::spec::ZoneSpec,
    staging: &Path,
    host: &str,
) -> Result<()> {
    let target = Target::Staging(staging);
    let mut files: Vec<(&str, u32)> = Vec::new();
    for cert in &spec.pki.certificates {
        for i in cert.installs.iter().filter(|i| i.host == host) {
            files.push((&i.certificate, CERTIFICATE_MODE));
            files.push((&i.private_key, KEY_MODE));
            files.push((&i.ca, CERTIFICATE_MODE));
        }
    }
    for i in spec.pki.ca.installs.iter().filter(|i| i.host == host) {
        files.push((&i.path, CERTIFICATE_MODE));
    }
    for (path, mode) in files {
        let from = target.path(host, path);
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        bsfg_pki::files::write(Path::new(path), &bytes, mode)?;
    }
    Ok(())
}

pub(super) fn client_files(dir: &Path, cn: &str) -> TlsFiles {
    TlsFiles {
        certificate: dir.join(format!("{cn}.pem")),
        private_key: dir.join(format!("{cn}.key")),
        ca: dir.join("ca.pem"),
    }
}

/// Installs the renewed certificate of client identity `cn` into `dir`.
pub(super) fn install_client(z: &Zone, ca_dir: &Path, cn: &str, dir: &Path) -> Result<()> {
    let c = z
        .spec
        .pki
        .certificates
        .iter()
        .find(|c| c.installs.is_empty() && c.common_name == cn)
        .with_context(|| format!("the plan has no client certificate for {cn}"))?;
    let to = client_files(dir, cn);
    let certs = ca_dir.join("certificates");
    for (from, to, mode) in [
        (
            certs.join(format!("{}.pem", c.name)),
            to.certificate,
            CERTIFICATE_MODE,
        ),
        (
            certs.join(format!("{}.key", c.name)),
            to.private_key,
            KEY_MODE,
        ),
        (trust_bundle(ca_dir), to.ca, CERTIFICATE_MODE),
    ] {
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        bsfg_pki::files::write(&to, &bytes, mode)?;
    }
    Ok(())
}

/// What clients trust: the CA directory's bundle (both CAs during a
/// rollover), or its CA alone in a directory that has none.
pub(super) fn trust_bundle(ca_dir: &Path) -> PathBuf {
    let bundle = ca_dir.join("bundle.pem");
    if bundle.exists() {
        bundle
    } else {
        ca_dir.join("ca.pem")
    }
}

/// `bsfgctl <args>` on the CA machine (no namespace: it needs no network);
/// its output, or an error with it when the exit status is not 0.
fn bsfgctl(args: &[&str]) -> Result<String> {
    let (code, text) = bsfgctl_exit(args)?;
    if code != Some(0) {
        bail!("bsfgctl {} exited with {code:?}: {text}", args.join(" "));
    }
    Ok(text)
}

/// `bsfgctl <args>`: its exit code and its output.
fn bsfgctl_exit(args: &[&str]) -> Result<(Option<i32>, String)> {
    let bin = bsfg_testkit::bins::find_workspace_binary("bsfgctl", None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = std::process::Command::new(&bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), text))
}
