//! A test PKI on the zone PKI library (bsfg-pki, what `bsfgctl pki` uses):
//! one CA per zone, leaf certificates on demand.
//!
//! Files are written under a temporary directory that lives as long as the
//! `TestPki`. Validity windows are explicit, so expired and short-lived
//! certificates are real certificates, verified by real rustls.

use bsfg_pki::{Authority, LeafRequest, Validity};
use std::net::IpAddr;
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// Paths of one identity's certificate, key and the CA that signed it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub ca: PathBuf,
}

impl Identity {
    pub fn tls_files(&self) -> bsfg_core::config::TlsFiles {
        bsfg_core::config::TlsFiles {
            certificate: self.certificate.clone(),
            private_key: self.private_key.clone(),
            ca: self.ca.clone(),
        }
    }
}

pub use bsfg_pki::Usage;

pub struct TestPki {
    dir: tempfile::TempDir,
    name: String,
    authority: Authority,
    ca_path: PathBuf,
    /// PEM appended to every issued certificate: the intermediates between
    /// this issuer and the root (empty for a root CA).
    chain_pem: String,
}

impl TestPki {
    /// A new CA named `<name> test CA`.
    pub fn new(name: &str) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("bsfg-pki-")
            .tempdir()
            .expect("tempdir");
        Self::in_dir(name, dir)
    }

    fn in_dir(name: &str, dir: tempfile::TempDir) -> TestPki {
        let now = OffsetDateTime::now_utc();
        Self::in_dir_with_ca_window(
            name,
            dir,
            now - Duration::days(1),
            now + Duration::days(3650),
        )
    }

    /// A new CA named `<name> test CA` valid until `not_after`: a CA about
    /// to expire (or expired) under a leaf that is still fine.
    pub fn with_ca_expiring(name: &str, not_after: OffsetDateTime) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("bsfg-pki-")
            .tempdir()
            .expect("tempdir");
        let not_before = not_after.min(OffsetDateTime::now_utc()) - Duration::days(1);
        Self::in_dir_with_ca_window(name, dir, not_before, not_after)
    }

    fn in_dir_with_ca_window(
        name: &str,
        dir: tempfile::TempDir,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> TestPki {
        // A root that may sign intermediates, so tests can build chains.
        let authority = Authority::generate_root(
            &format!("{name} test CA"),
            Validity {
                not_before,
                not_after,
            },
        )
        .expect("generate the test CA");
        let ca_path = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca_path, authority.certificate_pem()).expect("write CA");
        TestPki {
            dir,
            name: name.to_owned(),
            authority,
            ca_path,
            chain_pem: String::new(),
        }
    }

    /// An intermediate CA `<name> intermediate CA` signed by this CA, valid
    /// until `not_after`. Certificates it issues are written with the
    /// intermediate appended (the chain a server presents); their `ca` is
    /// this (root) CA's file.
    pub fn intermediate(&self, name: &str, not_after: OffsetDateTime) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("bsfg-pki-")
            .tempdir()
            .expect("tempdir");
        let authority = self
            .authority
            .intermediate_authority(
                &format!("{name} intermediate CA"),
                Validity {
                    not_before: not_after.min(OffsetDateTime::now_utc()) - Duration::days(1),
                    not_after,
                },
            )
            .expect("issue the intermediate");
        let chain_pem = format!("{}{}", authority.certificate_pem(), self.chain_pem);
        TestPki {
            dir,
            name: name.to_owned(),
            authority,
            ca_path: self.ca_path.clone(),
            chain_pem,
        }
    }

    pub fn ca_path(&self) -> &PathBuf {
        &self.ca_path
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A certificate valid from yesterday for `valid_days` days.
    pub fn issue(&self, identity: &str, usage: Usage, ips: &[IpAddr], valid_days: i64) -> Identity {
        let now = OffsetDateTime::now_utc();
        self.issue_window(
            identity,
            usage,
            ips,
            now - Duration::days(1),
            now + Duration::days(valid_days),
        )
    }

    /// A server certificate for `identity` with IP SANs (a controller on a VIP).
    pub fn server(&self, identity: &str, ips: &[IpAddr]) -> Identity {
        self.issue(identity, Usage::ServerAndClient, ips, 365)
    }

    /// A client certificate for `identity`.
    pub fn client(&self, identity: &str) -> Identity {
        self.issue(identity, Usage::Client, &[], 365)
    }

    /// A client certificate that expired yesterday.
    pub fn expired_client(&self, identity: &str) -> Identity {
        let now = OffsetDateTime::now_utc();
        self.issue_window(
            identity,
            Usage::Client,
            &[],
            now - Duration::days(30),
            now - Duration::days(1),
        )
    }

    /// A certificate with an explicit validity window.
    pub fn issue_window(
        &self,
        identity: &str,
        usage: Usage,
        ips: &[IpAddr],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Identity {
        let issued = self
            .authority
            .issue(
                &LeafRequest {
                    common_name: identity.to_owned(),
                    dns_names: vec![identity.to_owned()],
                    ip_addresses: ips.to_vec(),
                    usage,
                },
                Validity {
                    not_before,
                    not_after,
                },
            )
            .expect("issue a test certificate");
        let stem = format!("{}-{identity}-{}", self.name, not_after.unix_timestamp());
        let certificate = self.dir.path().join(format!("{stem}.pem"));
        let private_key = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(
            &certificate,
            format!("{}{}", issued.certificate_pem, self.chain_pem),
        )
        .expect("write cert");
        std::fs::write(&private_key, &issued.private_key_pem).expect("write key");
        Identity {
            certificate,
            private_key,
            ca: self.ca_path.clone(),
        }
    }
}

impl TestPki {
    /// The CA itself, to issue a zone's whole plan from it.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }
}
