//! Certificates of a simulated zone, issued with the zone PKI library
//! (bsfg-pki) from the zone library's certificate plan (`pki` of
//! modules/lib/simulator.nix), exactly as `bsfgctl pki issue` issues the
//! appliance's: one zone CA, the controller certificate (IP SANs: the VIP
//! and the service hosts' addresses) where the library points the
//! controller's `tls.*` and the agent's `certificate.path`, a NATS route
//! certificate per host, and the client identities' certificates under
//! `<run dir>/client/` (the producer and reader among them).
//!
//! The systemd mode issues the plan with the appliance's install paths
//! (modules/lib/container.nix) into a staging tree, one directory per host
//! as `bsfgctl pki issue --staging` writes it, from which each container
//! binds its credential directories: every file is written atomically
//! (bsfg-pki: a temporary file, then a rename), and a reissued one reaches
//! the container's units the next time they load it.

use super::files::mkdir;
use super::spec::ZoneSpec;
use super::workload::Workload;
use anyhow::{Context, Result};
use bsfg_core::config::TlsFiles;
use bsfg_pki::issue::{self, Target};
use bsfg_pki::{Authority, Issued, LeafRequest, Plan, Usage, Validity};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Validity of the controller certificate: well above the 30-day policy.
pub const VALID_DAYS: i64 = 365;
/// The short certificate of the `cert-below-threshold` drill (as the VM test's).
pub const SHORT_DAYS: i64 = 10;

/// The identity (CN and DNS SAN) of a zone's controller certificate when
/// the description leaves `certificates.controllerIdentity` unset: what a
/// peer zone sees when this zone pulls from it.
pub fn controller_identity(zone: &str) -> String {
    format!("{zone}-bsfg")
}

/// The DNS SAN of every route certificate of a zone (modules/lib/nats.nix
/// `routeIdentity`).
pub fn nats_route_identity(zone: &str) -> String {
    format!("nats-route.{zone}")
}

pub struct Credentials {
    authority: Authority,
    /// The plan issued, and where ([`Credentials::create`]).
    plan: Plan,
    staging: Option<PathBuf>,
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

fn validity(days: i64) -> Validity {
    // From yesterday: the simulated hosts share the machine's clock, and the
    // drills compare remaining days.
    let now = OffsetDateTime::now_utc();
    Validity {
        not_before: now - Duration::days(1),
        not_after: now + Duration::days(days),
    }
}

fn client_files(dir: &Path, identity: &str) -> TlsFiles {
    TlsFiles {
        certificate: dir.join(format!("{identity}.pem")),
        private_key: dir.join(format!("{identity}.key")),
        ca: dir.join("ca.pem"),
    }
}

fn write_tls(issued: &Issued, ca_pem: &str, files: &TlsFiles) -> Result<()> {
    use bsfg_pki::files::{CERTIFICATE_MODE, KEY_MODE, write};
    write(
        &files.certificate,
        issued.certificate_pem.as_bytes(),
        CERTIFICATE_MODE,
    )?;
    write(
        &files.private_key,
        issued.private_key_pem.as_bytes(),
        KEY_MODE,
    )?;
    write(&files.ca, ca_pem.as_bytes(), CERTIFICATE_MODE)?;
    Ok(())
}

impl Credentials {
    /// Makes the CA, issues the zone's whole certificate `plan` into the
    /// paths it names (under `staging`, `<staging>/<host>/<path>`, when
    /// given), and installs every client identity's certificate under
    /// `<run_dir>/client/`.
    pub fn create(
        plan: &Plan,
        staging: Option<&Path>,
        workload: &Workload,
        run_dir: &Path,
    ) -> Result<Credentials> {
        let authority = Authority::generate(&plan.ca.common_name, validity(3650))
            .context("making the zone CA")?;
        let client_dir = run_dir.join("client");
        mkdir(&client_dir)?;
        let target = staging.map_or(Target::InPlace, Target::Staging);
        let issued = issue::issue_plan(&authority, plan, validity(VALID_DAYS), target)
            .context("issuing the zone's certificate plan")?;
        for (c, i) in &issued {
            if c.installs.is_empty() {
                write_tls(
                    i,
                    authority.certificate_pem(),
                    &client_files(&client_dir, &c.common_name),
                )?;
            }
        }
        for id in [&workload.producer, &workload.reader] {
            anyhow::ensure!(
                client_files(&client_dir, id).certificate.exists(),
                "the workload's identity {id} is in no ACL of the zone, so the certificate plan has no certificate for it"
            );
        }
        Ok(Credentials {
            producer: client_files(&client_dir, &workload.producer),
            reader: client_files(&client_dir, &workload.reader),
            authority,
            plan: plan.clone(),
            staging: staging.map(Path::to_path_buf),
            client_dir,
        })
    }

    /// Issues `host`'s certificate for the JetStream cluster routes from the
    /// plan of `spec` (this zone's or a peer zone's, from this CA).
    pub fn install_nats_route(&self, spec: &ZoneSpec, host: &str) -> Result<()> {
        let name = format!("nats-route-{host}");
        let c = spec
            .pki
            .certificate(&name)
            .with_context(|| format!("the certificate plan has no {name}"))?;
        let issued = self.authority.issue(&c.request(), validity(VALID_DAYS))?;
        issue::install(
            c,
            &issued,
            self.authority.certificate_pem(),
            Target::InPlace,
        )?;
        Ok(())
    }

    /// (Re)issues the controller certificate of `host`, valid for `days`,
    /// where the plan installs it (each file replaced by a rename).
    pub fn install_server(&self, host: &str, days: i64) -> Result<()> {
        let mut c = self
            .plan
            .certificate("controller")
            .context("the certificate plan has no controller certificate")?
            .clone();
        c.installs.retain(|i| i.host == host);
        anyhow::ensure!(!c.installs.is_empty(), "{host} runs no controller");
        let issued = self.authority.issue(&c.request(), validity(days))?;
        let target = self
            .staging
            .as_deref()
            .map_or(Target::InPlace, Target::Staging);
        issue::install(&c, &issued, self.authority.certificate_pem(), target)?;
        Ok(())
    }

    /// Where the controller certificate of `host` is on this machine.
    pub fn server_certificate(&self, host: &str) -> Result<PathBuf> {
        let c = self
            .plan
            .certificate("controller")
            .context("the certificate plan has no controller certificate")?;
        let i = c
            .installs
            .iter()
            .find(|i| i.host == host)
            .with_context(|| format!("{host} runs no controller"))?;
        Ok(self
            .staging
            .as_deref()
            .map_or(Target::InPlace, Target::Staging)
            .path(host, &i.certificate))
    }

    /// Writes this zone's CA and every certificate of its plan as the
    /// offline CA directory of `bsfgctl pki` (`ca.pem`, `ca.key`,
    /// `certificates/<name>.pem|key`), read from where they are installed,
    /// so that `bsfgctl pki renew` can take over the zone's PKI.
    pub fn export_ca_dir(&self, spec: &ZoneSpec, dir: &Path) -> Result<()> {
        use bsfg_pki::files::{CERTIFICATE_MODE, KEY_MODE, write};
        write(
            &dir.join("ca.pem"),
            self.authority.certificate_pem().as_bytes(),
            CERTIFICATE_MODE,
        )?;
        write(
            &dir.join("ca.key"),
            self.authority.private_key_pem().as_bytes(),
            KEY_MODE,
        )?;
        for c in &spec.pki.certificates {
            let (cert, key) = match c.installs.first() {
                Some(i) => (PathBuf::from(&i.certificate), PathBuf::from(&i.private_key)),
                None => {
                    let f = client_files(&self.client_dir, &c.common_name);
                    (f.certificate, f.private_key)
                }
            };
            let out = dir.join("certificates");
            for (from, to, mode) in [
                (cert, out.join(format!("{}.pem", c.name)), CERTIFICATE_MODE),
                (key, out.join(format!("{}.key", c.name)), KEY_MODE),
            ] {
                let text =
                    std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
                write(&to, &text, mode)?;
            }
        }
        Ok(())
    }

    /// Where the simulator installs the client identity `common_name`'s files.
    pub fn client_files(&self, common_name: &str) -> TlsFiles {
        client_files(&self.client_dir, common_name)
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
        let request = LeafRequest {
            common_name: identity.to_owned(),
            dns_names: vec![identity.to_owned()],
            ip_addresses: ips.to_vec(),
            usage,
        };
        let issued = self.authority.issue(&request, validity(days))?;
        write_tls(&issued, self.authority.certificate_pem(), files)
    }
}
