//! The controller's certificate chain and the CAs it trusts: the validity
//! windows of every PEM certificate in those files.

use crate::gates::certificate::{CertificateFacts, ChainCertificate, ChainRole};
use std::path::{Path, PathBuf};

pub fn observe(path: &Path) -> Result<CertificateFacts, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The leaf and intermediates of `leaf` (a chain file), then every
/// certificate of each trusted CA bundle. An unreadable file yields one
/// entry carrying the error, so the gate names it.
pub fn observe_chain(leaf: &Path, trust: &[PathBuf]) -> Vec<ChainCertificate> {
    let mut out = Vec::new();
    let mut add = |path: &Path, roles: &dyn Fn(usize) -> ChainRole| {
        let all = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| parse_all(&b));
        match all {
            Ok(certs) => {
                out.extend(
                    certs
                        .into_iter()
                        .enumerate()
                        .map(|(i, facts)| ChainCertificate {
                            role: roles(i),
                            path: path.to_owned(),
                            facts: Ok(facts),
                        }),
                )
            }
            Err(e) => out.push(ChainCertificate {
                role: roles(0),
                path: path.to_owned(),
                facts: Err(format!("{}: {e}", path.display())),
            }),
        }
    };
    add(leaf, &|i| {
        if i == 0 {
            ChainRole::Leaf
        } else {
            ChainRole::Intermediate
        }
    });
    for t in trust {
        add(t, &|_| ChainRole::Ca);
    }
    out
}

/// The leaf (first) certificate of a PEM chain.
pub fn parse(pem_bytes: &[u8]) -> Result<CertificateFacts, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_bytes)
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if pem.label != "CERTIFICATE" {
        return Err(format!(
            "first PEM block is {:?}, not CERTIFICATE",
            pem.label
        ));
    }
    facts(&pem)
}

/// Every certificate of a PEM bundle, in file order; at least one.
pub fn parse_all(pem_bytes: &[u8]) -> Result<Vec<CertificateFacts>, String> {
    let mut out = Vec::new();
    for (i, pem) in x509_parser::pem::Pem::iter_from_buffer(pem_bytes).enumerate() {
        let pem = pem.map_err(|e| format!("PEM block {}: {e}", i + 1))?;
        if pem.label != "CERTIFICATE" {
            return Err(format!(
                "PEM block {} is {:?}, not CERTIFICATE",
                i + 1,
                pem.label
            ));
        }
        out.push(facts(&pem).map_err(|e| format!("PEM block {}: {e}", i + 1))?);
    }
    if out.is_empty() {
        return Err("no PEM certificate".into());
    }
    Ok(out)
}

fn facts(pem: &x509_parser::pem::Pem) -> Result<CertificateFacts, String> {
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("invalid X.509 certificate: {e}"))?;
    let validity = cert.validity();
    Ok(CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}
