//! A test PKI made with rcgen: one CA per zone, leaf certificates on demand.
//!
//! Files are written under a temporary directory that lives as long as the
//! `TestPki`. Validity windows are explicit, so expired and short-lived
//! certificates are real certificates, verified by real rustls.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
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

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    /// Both: a controller that serves and also pulls from peers.
    Both,
}

pub struct TestPki {
    dir: tempfile::TempDir,
    name: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
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
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{name} test CA"));
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let ca_path = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca_path, ca_cert.pem()).expect("write CA");
        TestPki {
            dir,
            name: name.to_owned(),
            ca_params,
            ca_key,
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
        let key = KeyPair::generate().expect("intermediate key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("intermediate params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{name} intermediate CA"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_after.min(OffsetDateTime::now_utc()) - Duration::days(1);
        params.not_after = not_after;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign intermediate");
        TestPki {
            dir,
            name: name.to_owned(),
            ca_params: params,
            ca_key: key,
            ca_path: self.ca_path.clone(),
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
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
        self.issue(identity, Usage::Both, ips, 365)
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
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![identity.to_owned()]).expect("leaf params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity);
        params.distinguished_name = dn;
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign leaf");
        let stem = format!("{}-{identity}-{}", self.name, not_after.unix_timestamp());
        let certificate = self.dir.path().join(format!("{stem}.pem"));
        let private_key = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&certificate, format!("{}{}", cert.pem(), self.chain_pem))
            .expect("write cert");
        std::fs::write(&private_key, key.serialize_pem()).expect("write key");
        Identity {
            certificate,
            private_key,
            ca: self.ca_path.clone(),
        }
    }
}
