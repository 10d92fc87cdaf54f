//! Issuing a plan and installing its files where the zone library expects
//! them, with their modes.

use crate::Result;
use crate::authority::{Authority, Issued, Validity};
use crate::files::{self, CERTIFICATE_MODE, KEY_MODE};
use crate::plan::{Certificate, Plan};
use std::path::{Path, PathBuf};

/// Where the install paths of a plan are written.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The paths themselves (the simulator; a host installing its own files).
    InPlace,
    /// `<dir>/<host>/<path>`: one tree per host, to copy onto its root.
    Staging(&'a Path),
}

impl Target<'_> {
    pub fn path(&self, host: &str, path: &str) -> PathBuf {
        match self {
            Target::InPlace => PathBuf::from(path),
            Target::Staging(dir) => dir.join(host).join(path.trim_start_matches('/')),
        }
    }
}

/// Writes `issued` (certificate 0644, key 0600) and the CA (0644) to every
/// install of `certificate`; returns the paths written.
pub fn install(
    certificate: &Certificate,
    issued: &Issued,
    ca_pem: &str,
    target: Target<'_>,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for i in &certificate.installs {
        let cert = target.path(&i.host, &i.certificate);
        let key = target.path(&i.host, &i.private_key);
        let ca = target.path(&i.host, &i.ca);
        files::write(&cert, issued.certificate_pem.as_bytes(), CERTIFICATE_MODE)?;
        files::write(&key, issued.private_key_pem.as_bytes(), KEY_MODE)?;
        files::write(&ca, ca_pem.as_bytes(), CERTIFICATE_MODE)?;
        written.extend([cert, key, ca]);
    }
    Ok(written)
}

/// Writes the CA to every host of the plan.
pub fn install_ca(plan: &Plan, ca_pem: &str, target: Target<'_>) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for i in &plan.ca.installs {
        let p = target.path(&i.host, &i.path);
        files::write(&p, ca_pem.as_bytes(), CERTIFICATE_MODE)?;
        written.push(p);
    }
    Ok(written)
}

/// Issues every certificate of `plan` and installs the CA and every
/// certificate; returns each certificate with what was issued for it.
pub fn issue_plan<'p>(
    authority: &Authority,
    plan: &'p Plan,
    validity: Validity,
    target: Target<'_>,
) -> Result<Vec<(&'p Certificate, Issued)>> {
    install_ca(plan, authority.certificate_pem(), target)?;
    let mut out = Vec::new();
    for c in &plan.certificates {
        let issued = authority.issue(&c.request(), validity)?;
        install(c, &issued, authority.certificate_pem(), target)?;
        out.push((c, issued));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect;
    use std::os::unix::fs::PermissionsExt;

    fn plan() -> Plan {
        serde_json::from_str(
            r#"{"zone":"plant-a","ca":{"commonName":"plant-a zone CA","installs":[
                {"host":"alpha","path":"/var/lib/bsfg/tls/ca.pem"},{"host":"gamma","path":"/var/lib/bsfg/tls/ca.pem"}]},
              "certificates":[
                {"name":"controller","commonName":"plant-a-bsfg","dnsNames":["plant-a-bsfg"],
                 "ipAddresses":["10.20.0.100","10.20.0.11"],"usage":"serverAndClient",
                 "installs":[{"host":"alpha","certificate":"/var/lib/bsfg/tls/controller.pem",
                   "privateKey":"/var/lib/bsfg/tls/controller.key","ca":"/var/lib/bsfg/tls/ca.pem"}]},
                {"name":"client-mes-producer","commonName":"mes-producer","dnsNames":["mes-producer"],
                 "ipAddresses":[],"usage":"client","installs":[]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn staged_files_have_their_modes_and_chain_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan();
        let ca = Authority::generate(&plan.ca.common_name, Validity::days_from_now(3650)).unwrap();
        let issued = issue_plan(
            &ca,
            &plan,
            Validity::days_from_now(365),
            Target::Staging(dir.path()),
        )
        .unwrap();
        assert_eq!(issued.len(), 2);
        let root = dir.path().join("alpha/var/lib/bsfg/tls");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.join("controller.key")), 0o600);
        assert_eq!(mode(&root.join("controller.pem")), 0o644);
        assert_eq!(mode(&root.join("ca.pem")), 0o644);
        assert!(dir.path().join("gamma/var/lib/bsfg/tls/ca.pem").exists());
        assert!(
            !dir.path()
                .join("gamma/var/lib/bsfg/tls/controller.pem")
                .exists()
        );
        let cert = files::read(&root.join("controller.pem")).unwrap();
        inspect::verify_signed_by(&cert, ca.certificate_pem()).unwrap();
        inspect::key_matches(&cert, &files::read(&root.join("controller.key")).unwrap()).unwrap();
        let facts = inspect::parse_pem(cert.as_bytes()).unwrap();
        assert_eq!(facts.ip_addresses.len(), 2);
    }
}
