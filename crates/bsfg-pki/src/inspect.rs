//! What a certificate says, and whether it is valid long enough. Pure: the
//! caller reads the files and passes the clock.

use std::net::IpAddr;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The facts of one certificate that the zone's checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// DER of the SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
}

/// The DER of every CERTIFICATE block of a PEM file, in order.
pub fn pem_certificates(pem_bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem_bytes) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err("no PEM CERTIFICATE block".into());
    }
    Ok(out)
}

fn facts(cert: &X509Certificate<'_>) -> CertificateFacts {
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => {
                        ip_addresses.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()))
                    }
                    16 => ip_addresses
                        .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        common_name,
        dns_names,
        ip_addresses,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        public_key_der: cert.public_key().raw.to_vec(),
    }
}

fn with_first<T>(
    pem_bytes: &[u8],
    f: impl FnOnce(&X509Certificate<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let der = pem_certificates(pem_bytes)?.remove(0);
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| format!("invalid X.509 certificate: {e}"))?;
    f(&cert)
}

/// The first certificate of a PEM file (the leaf of a chain).
pub fn parse_pem(pem_bytes: &[u8]) -> Result<CertificateFacts, String> {
    with_first(pem_bytes, |c| Ok(facts(c)))
}

/// Whether the first certificate of `leaf_pem` carries a valid signature by
/// a certificate of `ca_pem` (one CA, or a trust bundle of several) whose
/// subject is its issuer.
pub fn verify_signed_by(leaf_pem: &str, ca_pem: &str) -> Result<(), String> {
    signer_in(leaf_pem, ca_pem).map(|_| ())
}

/// The certificate of the bundle `ca_pem` that signed the first certificate
/// of `leaf_pem` (which CA of a rollover's bundle issued a leaf).
pub fn signer_in(leaf_pem: &str, ca_pem: &str) -> Result<CertificateFacts, String> {
    let cas = pem_certificates(ca_pem.as_bytes())?;
    with_first(leaf_pem.as_bytes(), |leaf| {
        let mut why = Vec::new();
        for der in &cas {
            let (_, ca) = X509Certificate::from_der(der)
                .map_err(|e| format!("invalid CA certificate: {e}"))?;
            if leaf.issuer() != ca.subject() {
                why.push(ca.subject().to_string());
                continue;
            }
            return match leaf.verify_signature(Some(ca.public_key())) {
                Ok(()) => Ok(facts(&ca)),
                Err(e) => Err(format!(
                    "signature does not verify against {}: {e}",
                    ca.subject()
                )),
            };
        }
        Err(format!(
            "issued by {}, not by {} ({})",
            leaf.issuer(),
            if cas.len() == 1 {
                "this CA"
            } else {
                "a CA of this bundle"
            },
            why.join(", ")
        ))
    })
}

/// Each CERTIFICATE block of a PEM text on its own (a trust bundle's CAs,
/// one PEM each, re-encoded with LF line ends), in order; other blocks and
/// text between blocks are dropped, a malformed block is an error.
pub fn split_pem(text: &str) -> Result<Vec<String>, String> {
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(pem::parse_many(text)
        .map_err(|e| format!("not PEM: {e}"))?
        .iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| pem::encode_config(block, lf))
        .collect())
}

/// SHA-256 of the first certificate's DER, lower-case hex (a CA's identity
/// in the rollover state).
pub fn sha256(pem_bytes: &[u8]) -> Result<String, String> {
    use sha2::Digest;
    let der = pem_certificates(pem_bytes)?.remove(0);
    Ok(hex::encode(sha2::Sha256::digest(&der)))
}

/// Whether `key_pem` is the private key of the first certificate of `cert_pem`.
pub fn key_matches(cert_pem: &str, key_pem: &str) -> Result<(), String> {
    let facts = parse_pem(cert_pem.as_bytes())?;
    let key =
        rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("not a PEM private key: {e}"))?;
    if rcgen::PublicKeyData::subject_public_key_info(&key) == facts.public_key_der {
        Ok(())
    } else {
        Err(format!("the key does not belong to {}", facts.subject))
    }
}

/// Where a certificate stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `not_before` is still `starts_in` seconds away (a clock behind, or issued ahead).
    NotYetValid {
        starts_in: i64,
    },
    /// Expired `ago` seconds ago.
    Expired {
        ago: i64,
    },
    /// Valid, but for less than the required minimum.
    BelowMinimum {
        remaining: i64,
    },
    Valid {
        remaining: i64,
    },
}

impl Expiry {
    /// `now` and the window in Unix seconds; `min_validity` in seconds.
    pub fn classify(not_before: i64, not_after: i64, now: i64, min_validity: i64) -> Expiry {
        if now < not_before {
            Expiry::NotYetValid {
                starts_in: not_before - now,
            }
        } else if now >= not_after {
            Expiry::Expired {
                ago: now - not_after,
            }
        } else if not_after - now < min_validity {
            Expiry::BelowMinimum {
                remaining: not_after - now,
            }
        } else {
            Expiry::Valid {
                remaining: not_after - now,
            }
        }
    }

    /// Usable now (possibly below the minimum).
    pub fn is_usable(self) -> bool {
        matches!(self, Expiry::Valid { .. } | Expiry::BelowMinimum { .. })
    }

    /// A stable token for tables, JSON and metrics labels.
    pub fn token(self) -> &'static str {
        match self {
            Expiry::NotYetValid { .. } => "not_yet_valid",
            Expiry::Expired { .. } => "expired",
            Expiry::BelowMinimum { .. } => "below_minimum",
            Expiry::Valid { .. } => "valid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Expiry;
    use crate::{Authority, LeafRequest, Usage, Validity};

    #[test]
    fn the_signer_of_a_leaf_is_found_in_a_bundle() {
        let old = Authority::generate("zone CA", Validity::days_from_now(30)).unwrap();
        let new = Authority::generate("zone CA G2", Validity::days_from_now(3650)).unwrap();
        let foreign = Authority::generate("foreign", Validity::days_from_now(30)).unwrap();
        let bundle = crate::rollover::bundle_pem(&[old.certificate_pem(), new.certificate_pem()]);
        let request = LeafRequest {
            common_name: "alpha".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            usage: Usage::Client,
        };
        let valid = Validity::days_from_now(10);
        for (ca, subject) in [(&old, "CN=zone CA"), (&new, "CN=zone CA G2")] {
            let leaf = ca.issue(&request, valid).unwrap().certificate_pem;
            assert_eq!(super::signer_in(&leaf, &bundle).unwrap().subject, subject);
            super::verify_signed_by(&leaf, &bundle).unwrap();
        }
        let stranger = foreign.issue(&request, valid).unwrap().certificate_pem;
        assert_eq!(
            super::signer_in(&stranger, &bundle).unwrap_err(),
            "issued by CN=foreign, not by a CA of this bundle (CN=zone CA, CN=zone CA G2)"
        );
        // The same subject with another key (a CA re-made under its old
        // name) does not pass for the CA of the bundle.
        let impostor = Authority::generate("zone CA", Validity::days_from_now(30)).unwrap();
        let forged = impostor.issue(&request, valid).unwrap().certificate_pem;
        assert!(super::signer_in(&forged, &bundle).is_err());
        assert_eq!(
            super::split_pem(&bundle).unwrap(),
            [old.certificate_pem(), new.certificate_pem()]
        );
        let mut corrupt = bundle.clone();
        let in_second = bundle.rfind("-----END").unwrap() - 10;
        corrupt.replace_range(in_second..in_second + 1, "!");
        assert!(
            super::split_pem(&corrupt).is_err(),
            "a damaged CA is an error, not one CA fewer"
        );
        assert_ne!(
            super::sha256(old.certificate_pem().as_bytes()).unwrap(),
            super::sha256(new.certificate_pem().as_bytes()).unwrap()
        );
    }

    const DAY: i64 = 86_400;

    #[test]
    fn classify_every_side_of_the_window() {
        let (nb, na) = (100 * DAY, 200 * DAY);
        assert_eq!(
            Expiry::classify(nb, na, nb - 5, 30 * DAY),
            Expiry::NotYetValid { starts_in: 5 }
        );
        assert_eq!(
            Expiry::classify(nb, na, na, 30 * DAY),
            Expiry::Expired { ago: 0 }
        );
        assert_eq!(
            Expiry::classify(nb, na, na - 29 * DAY, 30 * DAY),
            Expiry::BelowMinimum {
                remaining: 29 * DAY
            }
        );
        assert_eq!(
            Expiry::classify(nb, na, na - 30 * DAY, 30 * DAY),
            Expiry::Valid {
                remaining: 30 * DAY
            }
        );
        assert!(Expiry::classify(nb, na, na - 1, 30 * DAY).is_usable());
        assert!(!Expiry::classify(nb, na, na + 1, 0).is_usable());
    }
}
