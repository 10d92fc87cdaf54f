//! Certificates of a simulated zone, made with rcgen (the test PKI of
//! bsfg-testkit): one zone CA, the controller certificate (IP SANs: the VIP
//! and the service hosts' addresses) installed where the library points the
//! controller's `tls.*` and the agent's `certificate.path`, and client
//! certificates for the producer and reader identities under
//! `<run dir>/client/`.

use super::files::mkdir;
use super::spec::ZoneSpec;
use super::workload::Workload;
use anyhow::{Context, Result};
use bsfg_core::config::TlsFiles;
use bsfg_testkit::pki::{Identity, TestPki, Usage};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Validity of the controller certificate: well above the 30-day policy.
pub const VALID_DAYS: i64 = 365;
/// The short certificate of the `cert-below-threshold` drill (as the VM test's).
pub const SHORT_DAYS: i64 = 10;

/// The identity (CN and DNS SAN) of a zone's controller certificate: what
/// a peer zone sees when this zone pulls from it.
pub fn controller_identity(zone: &str) -> String {
    format!("{zone}-controller")
}

/// The DNS SAN of every route certificate of a zone (modules/lib/nats.nix
/// `routeIdentity`).
pub fn nats_route_identity(zone: &str) -> String {
    format!("nats-route.{zone}")
}

pub struct Credentials {
    pki: TestPki,
    server_ips: Vec<IpAddr>,
    identity: String,
    pub client_dir: PathBuf,
    pub producer: TlsFiles,
    pub reader: TlsFiles,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_dir", &self.client_dir)
            .finish_non_exhaustive()
    }
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

fn install(id: &Identity, cert: &Path, key: &Path, ca: &Path) -> Result<()> {
    if let Some(dir) = cert.parent() {
        mkdir(dir)?;
    }
    copy(&id.certificate, cert, 0o644)?;
    copy(&id.private_key, key, 0o600)?;
    copy(&id.ca, ca, 0o644)
}

impl Credentials {
    /// Makes the CA and every certificate, and installs them under `run_dir`.
    pub fn create(spec: &ZoneSpec, workload: &Workload, run_dir: &Path) -> Result<Credentials> {
        let pki = TestPki::new(&spec.zone);
        let mut server_ips: Vec<IpAddr> = vec![spec.vip.address.into()];
        for h in spec.service_hosts() {
            server_ips.push(spec.host(h).address.into());
        }
        let identity = controller_identity(&spec.zone);
        let client_dir = run_dir.join("client");
        mkdir(&client_dir)?;
        let client = |name: &str| -> Result<TlsFiles> {
            let id = pki.issue(name, Usage::Client, &[], VALID_DAYS);
            let files = TlsFiles {
                certificate: client_dir.join(format!("{name}.pem")),
                private_key: client_dir.join(format!("{name}.key")),
                ca: client_dir.join("ca.pem"),
            };
            install(&id, &files.certificate, &files.private_key, &files.ca)?;
            Ok(files)
        };
        let producer = client(&workload.producer)?;
        let reader = client(&workload.reader)?;
        let creds = Credentials {
            pki,
            server_ips,
            identity,
            client_dir,
            producer,
            reader,
        };
        for h in spec.service_hosts() {
            creds.install_server(spec, h, VALID_DAYS)?;
        }
        for h in spec.host_names() {
            creds.install_nats_route(spec, h)?;
        }
        Ok(creds)
    }

    /// Issues `host`'s certificate for the JetStream cluster routes: the
    /// zone's route identity as DNS SAN (what nats-server's
    /// `verify_and_map` admits), the host's address as IP SAN (what the
    /// dialling server verifies).
    pub fn install_nats_route(&self, spec: &ZoneSpec, host: &str) -> Result<()> {
        let h = spec.host(host);
        let id = self.pki.issue(
            &nats_route_identity(&spec.zone),
            Usage::Both,
            &[h.address.into()],
            VALID_DAYS,
        );
        let t = &h.paths.nats_route;
        install(&id, &t.certificate, &t.private_key, &t.ca)
    }

    /// (Re)issues the controller certificate of `host`, valid for `days`.
    pub fn install_server(&self, spec: &ZoneSpec, host: &str, days: i64) -> Result<()> {
        let id = self
            .pki
            .issue(&self.identity, Usage::Both, &self.server_ips, days);
        let tls = &spec.host(host).paths.tls;
        install(&id, &tls.certificate, &tls.private_key, &tls.ca)
    }

    /// Issues a certificate from the zone CA for `identity` and installs it
    /// (with the CA) as `files` (the peer node of a replication drill).
    pub fn issue_to(
        &self,
        identity: &str,
        usage: Usage,
        ips: &[IpAddr],
        days: i64,
        files: &TlsFiles,
    ) -> Result<()> {
        let id = self.pki.issue(identity, usage, ips, days);
        install(&id, &files.certificate, &files.private_key, &files.ca)
    }
}
