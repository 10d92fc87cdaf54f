//! The zone CA and the leaf certificates it issues.
//!
//! A zone either has its own CA ([`Authority::generate`]) or issues from an
//! existing one, typically an intermediate of the enterprise PKI
//! ([`Authority::load`]). Keys are ECDSA P-256, generated here; a leaf's key
//! is new on every issue, so a renewal is also a key rotation.

use crate::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// What a leaf certificate may be used for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Usage {
    Server,
    Client,
    /// A controller serves and also pulls from peers; a NATS route both
    /// accepts and dials.
    ServerAndClient,
}

/// A certificate's validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// How far back a new certificate's validity starts, so that a host whose
/// clock is a little behind the CA machine's accepts it at once.
pub const BACKDATE: Duration = Duration::hours(1);

impl Validity {
    /// From an hour ago for `days` days.
    pub fn days_from_now(days: i64) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - BACKDATE,
            not_after: now + Duration::days(days),
        }
    }
}

/// What a leaf certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRequest {
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub usage: Usage,
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

pub struct Authority {
    certificate_pem: String,
    key: KeyPair,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn key_pair() -> Result<KeyPair> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?)
}

fn ca_params(
    common_name: &str,
    validity: Validity,
    constraints: BasicConstraints,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    Ok(params)
}

impl Authority {
    /// A new self-signed zone CA named `common_name`. No intermediates below
    /// the zone CA: a leaf is the only thing it signs.
    pub fn generate(common_name: &str, validity: Validity) -> Result<Authority> {
        Self::self_signed(common_name, validity, BasicConstraints::Constrained(0))
    }

    /// A new self-signed root that may sign intermediates: an enterprise
    /// root above zone CAs (labs and tests; a site brings its own).
    pub fn generate_root(common_name: &str, validity: Validity) -> Result<Authority> {
        Self::self_signed(common_name, validity, BasicConstraints::Unconstrained)
    }

    fn self_signed(
        common_name: &str,
        validity: Validity,
        constraints: BasicConstraints,
    ) -> Result<Authority> {
        let key = key_pair()?;
        let params = ca_params(common_name, validity, constraints)?;
        let certificate = params.self_signed(&key)?;
        let certificate_pem = certificate.pem();
        let issuer_key = KeyPair::from_pem(&key.serialize_pem())?;
        Ok(Authority {
            certificate_pem,
            key,
            issuer: Issuer::new(params, issuer_key),
        })
    }

    /// An existing CA (e.g. an enterprise intermediate): its certificate
    /// (PEM; the first certificate is the issuing one) and private key.
    /// Refuses a certificate that is not a CA, a key that does not belong
    /// to it, and an expired CA.
    pub fn load(certificate_pem: &str, private_key_pem: &str) -> Result<Authority> {
        let facts = crate::inspect::parse_pem(certificate_pem.as_bytes())
            .map_err(|e| Error::cert("CA certificate", e))?;
        if !facts.is_ca {
            return Err(Error::cert(
                "CA certificate",
                format!(
                    "{} is not a CA (basicConstraints CA:TRUE is missing)",
                    facts.subject
                ),
            ));
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if facts.not_after <= now {
            return Err(Error::cert(
                "CA certificate",
                format!("{} expired", facts.subject),
            ));
        }
        let key = KeyPair::from_pem(private_key_pem)
            .map_err(|e| Error::cert("CA private key", format!("not a PEM private key: {e}")))?;
        if rcgen::PublicKeyData::subject_public_key_info(&key) != facts.public_key_der {
            return Err(Error::cert(
                "CA private key",
                format!("does not belong to the certificate of {}", facts.subject),
            ));
        }
        let issuer_key = KeyPair::from_pem(private_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(certificate_pem, issuer_key)
            .map_err(|e| Error::cert("CA certificate", e))?;
        Ok(Authority {
            certificate_pem: certificate_pem.to_owned(),
            key,
            issuer,
        })
    }

    /// The CA certificate (PEM), what every host trusts.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The CA's private key (PEM); it stays on the CA machine.
    pub fn private_key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A subordinate CA (no further CAs below it), as an enterprise root
    /// hands one to a zone: a new key and its CA certificate.
    pub fn issue_intermediate(&self, common_name: &str, validity: Validity) -> Result<Issued> {
        let sub = self.intermediate_authority(common_name, validity)?;
        Ok(Issued {
            certificate_pem: sub.certificate_pem.clone(),
            private_key_pem: sub.private_key_pem(),
        })
    }

    /// The same subordinate CA, ready to issue. Unlike [`Authority::load`]
    /// it takes any validity, so an expired intermediate can be made.
    pub fn intermediate_authority(
        &self,
        common_name: &str,
        validity: Validity,
    ) -> Result<Authority> {
        let key = key_pair()?;
        let params = ca_params(common_name, validity, BasicConstraints::Constrained(0))?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        let issuer_key = KeyPair::from_pem(&key.serialize_pem())?;
        Ok(Authority {
            certificate_pem: certificate.pem(),
            key,
            issuer: Issuer::new(params, issuer_key),
        })
    }

    /// A new key and a certificate for it.
    pub fn issue(&self, request: &LeafRequest, validity: Validity) -> Result<Issued> {
        let key = key_pair()?;
        let mut params = CertificateParams::new(request.dns_names.clone())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, request.common_name.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.subject_alt_names.extend(
            request
                .ip_addresses
                .iter()
                .map(|ip| SanType::IpAddress(*ip)),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match request.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect;

    fn leaf() -> LeafRequest {
        LeafRequest {
            common_name: "plant-a-bsfg".into(),
            dns_names: vec!["plant-a-bsfg".into()],
            ip_addresses: vec![
                "10.20.0.100".parse().unwrap(),
                "10.20.0.11".parse().unwrap(),
            ],
            usage: Usage::ServerAndClient,
        }
    }

    #[test]
    fn issued_leaf_names_its_sans_and_chains_to_the_ca() {
        let ca = Authority::generate("plant-a zone CA", Validity::days_from_now(3650)).unwrap();
        let issued = ca.issue(&leaf(), Validity::days_from_now(30)).unwrap();
        let facts = inspect::parse_pem(issued.certificate_pem.as_bytes()).unwrap();
        assert_eq!(facts.common_name.as_deref(), Some("plant-a-bsfg"));
        assert_eq!(facts.dns_names, vec!["plant-a-bsfg".to_owned()]);
        assert_eq!(facts.ip_addresses, leaf().ip_addresses);
        assert!(!facts.is_ca);
        assert_eq!(facts.issuer, "CN=plant-a zone CA");
        inspect::verify_signed_by(&issued.certificate_pem, ca.certificate_pem()).unwrap();
        inspect::key_matches(&issued.certificate_pem, &issued.private_key_pem).unwrap();
        let other = Authority::generate("foreign CA", Validity::days_from_now(10)).unwrap();
        assert!(
            inspect::verify_signed_by(&issued.certificate_pem, other.certificate_pem()).is_err()
        );
    }

    #[test]
    fn an_existing_intermediate_issues_and_the_wrong_key_or_a_leaf_is_refused() {
        let root = Authority::generate("enterprise root", Validity::days_from_now(3650)).unwrap();
        // An intermediate signed by the root, as an enterprise PKI hands it out.
        let handed = root
            .issue_intermediate("plant-a intermediate", Validity::days_from_now(1825))
            .unwrap();
        let cert = &handed.certificate_pem;
        let intermediate = Authority::load(cert, &handed.private_key_pem).unwrap();
        let issued = intermediate
            .issue(&leaf(), Validity::days_from_now(30))
            .unwrap();
        inspect::verify_signed_by(&issued.certificate_pem, cert).unwrap();
        inspect::verify_signed_by(cert, root.certificate_pem()).unwrap();
        let facts = inspect::parse_pem(issued.certificate_pem.as_bytes()).unwrap();
        assert_eq!(facts.issuer, "CN=plant-a intermediate");

        let wrong = Authority::load(cert, &root.private_key_pem()).unwrap_err();
        assert!(wrong.to_string().contains("does not belong"), "{wrong}");
        let not_ca = Authority::load(&issued.certificate_pem, &issued.private_key_pem).unwrap_err();
        assert!(not_ca.to_string().contains("is not a CA"), "{not_ca}");
    }
}
