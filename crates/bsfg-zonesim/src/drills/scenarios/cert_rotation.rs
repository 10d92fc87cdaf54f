//! Certificate rotation by rolling restart. Under load, `bsfgctl pki renew`
//! (the zone's CA directory, exported from the simulator's CA) re-issues
//! every certificate of the zone's plan while the old ones stay valid (the
//! overlap); each host receives its new files just before its restart in
//! the planned order ([`super::rolling`]); a planned handover back puts
//! the zone where it was. The certificate each daemon serves is read over
//! a real TLS connection before and after.

use super::rolling::rolling_restart_in_planned_order;
use super::{Ctx, PROMOTION_TIMEOUT, contract, hosts, roles, serves_again, takes_over};
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

const PEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Renewed now although valid for a year: the drill rotates what it has.
const RENEW_WITHIN: &str = "400d";

pub(super) async fn cert_rotation(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "Certificate rotation: renewed with overlap, rolled out host by host in the planned order; no acknowledged fact lost, one controller at a time",
        ),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    c.target = Some(b.clone());
    let creds = z
        .credentials()
        .context("no CA in this process (certificates are made by `up`)")?;
    let work = z.run_dir.join("pki-rotation");
    let ca_dir = work.join("ca");
    creds.export_ca_dir(&z.spec, &ca_dir)?;
    let zone_file = write_zone_file(z, &work)?;

    let before = served(z).await?;
    for l in &before {
        c.check(
            &format!("before: {} serves its installed certificate", l.what),
            l.served.is(&l.installed),
            l.served.to_string(),
        );
    }

    let zone_file = zone_file.display().to_string();
    let dir = ca_dir.display().to_string();
    let pki = |args: &[&str]| {
        let mut full = vec!["pki", args[0], "--zone-file", zone_file.as_str()];
        full.extend_from_slice(&args[1..]);
        bsfgctl(&full)
    };
    let out = pki(&["renew", "--dir", &dir, "--within", RENEW_WITHIN])?;
    let renewed = out.lines().filter(|l| l.starts_with("issued ")).count();
    let planned = z.spec.pki.certificates.len();
    c.check(
        "bsfgctl pki renew re-issued every certificate of the plan",
        renewed == planned,
        format!("{renewed} of {planned} issued"),
    );
    let check = pki(&["check", "--dir", &dir]);
    c.check(
        "bsfgctl pki check passes on the renewed CA directory",
        check.is_ok(),
        check.map_or_else(|e| format!("{e:#}"), |_| "exit 0".into()),
    );

    // Clients are not the zone's hosts: their renewed files go to the
    // clients (here a directory of their own); the old ones stay valid.
    let new_producer = work.join("new-client");
    let producer_cn = z.workload.producer.clone();
    install_client(z, &ca_dir, &producer_cn, &new_producer)?;

    c.fault("certificates renewed; rolling restart in the planned order");
    let staging = ca_dir.join("hosts");
    let spec = z.spec.clone();
    let mut install = |host: &str| install_staged(&spec, &staging, host);
    let rolled = rolling_restart_in_planned_order(z, c, &mut install).await?;
    // The old standby serves now: its controller started with the new files.
    let on_standby = peek_controller(z, creds.client_files(&producer_cn)).await;
    c.event(format!(
        "planned handover from {} back to {}",
        rolled.standby, rolled.active
    ));
    z.restart_agent(&rolled.standby).await?;
    takes_over(c, &v, &rolled.standby, &rolled.active).await;
    c.fault_ended("every host restarted with its new certificates");

    let new_pem = |name: &str| -> Result<String> {
        let p = ca_dir.join("certificates").join(format!("{name}.pem"));
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let controller_pem = new_pem("controller")?;
    match on_standby {
        Ok(s) => c.check(
            &format!(
                "after: the controller on {} serves the new certificate",
                rolled.standby
            ),
            s.is(&controller_pem),
            s.to_string(),
        ),
        Err(e) => c.check(
            &format!(
                "after: the controller on {} serves the new certificate",
                rolled.standby
            ),
            false,
            e,
        ),
    };
    let after = served(z).await?;
    for (old, new) in before.iter().zip(&after) {
        let expected = new_pem(&new.certificate)?;
        c.check(
            &format!("after: {} serves the renewed certificate", new.what),
            new.served.is(&expected) && new.served.serial != old.served.serial,
            format!("was {}, now {}", old.served, new.served),
        );
    }
    for h in z.spec.host_names() {
        let r = pki(&["check", "--host", h]);
        c.check(
            &format!("bsfgctl pki check --host {h} passes on its installed files"),
            r.is_ok(),
            r.map_or_else(|e| format!("{e:#}"), |_| "exit 0".into()),
        );
    }
    for (which, tag, tls) in [
        ("renewed", "new", client_files(&new_producer, &producer_cn)),
        ("old (still valid)", "old", creds.client_files(&producer_cn)),
    ] {
        let id = format!("cert-rotation-{}-{tag}-client", z.instance);
        let name = format!("an append with the producer's {which} certificate is acknowledged");
        match append_as(z, tls, &id).await {
            Ok(()) => {
                c.check(&name, true, id.clone());
                c.extra_acked.push(id);
            }
            Err(e) => {
                c.check(&name, false, format!("{e:#}"));
            }
        }
    }
    serves_again(c, &v, PROMOTION_TIMEOUT).await;
    Ok(())
}

/// A TLS listener of the zone and the certificate it presents.
struct Listening {
    what: String,
    /// Its certificate's name in the plan (`controller`, `nats-route-<host>`).
    certificate: String,
    served: Served,
    /// The certificate installed for it (PEM).
    installed: String,
}

/// What serves TLS in the zone, with the certificate it presents and the
/// one installed for it: the controller on the VIP, each host's route port.
async fn served(z: &Zone) -> Result<Vec<Listening>> {
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
async fn peek_controller(z: &Zone, tls: TlsFiles) -> Result<Served, String> {
    let addr = SocketAddr::new(z.spec.vip.address.into(), z.spec.ports.controller);
    let name = z.spec.vip.address.to_string();
    z.in_ns(netns::CLIENT, move || async move {
        served_certificate::peek(Listener::Controller, addr, &name, &tls, PEEK_TIMEOUT).await
    })
    .await
    .map_err(|e| format!("{e:#}"))?
}

async fn append_as(z: &Zone, tls: TlsFiles, id: &str) -> Result<()> {
    let endpoint = z.spec.endpoint();
    let req = load::fact_request(&z.workload, "cert-rotation", id, 0, 1_780_000_000_000);
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
fn install_staged(spec: &crate::zone::spec::ZoneSpec, staging: &Path, host: &str) -> Result<()> {
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

fn client_files(dir: &Path, cn: &str) -> TlsFiles {
    TlsFiles {
        certificate: dir.join(format!("{cn}.pem")),
        private_key: dir.join(format!("{cn}.key")),
        ca: dir.join("ca.pem"),
    }
}

/// Installs the renewed certificate of client identity `cn` into `dir`.
fn install_client(z: &Zone, ca_dir: &Path, cn: &str, dir: &Path) -> Result<()> {
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
        (ca_dir.join("ca.pem"), to.ca, CERTIFICATE_MODE),
    ] {
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        bsfg_pki::files::write(&to, &bytes, mode)?;
    }
    Ok(())
}

/// `bsfgctl <args>` on the CA machine (no namespace: it needs no network);
/// its output, or an error with it when the exit status is not 0.
fn bsfgctl(args: &[&str]) -> Result<String> {
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
    if !out.status.success() {
        bail!(
            "bsfgctl {} exited with {}: {text}",
            args.join(" "),
            out.status
        );
    }
    Ok(text)
}
