//! The controller's certificate: validity window of the first PEM certificate.

use crate::gates::certificate::CertificateFacts;
use std::path::Path;

pub fn observe(path: &Path) -> Result<CertificateFacts, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
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
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("invalid X.509 certificate: {e}"))?;
    let validity = cert.validity();
    Ok(CertificateFacts {
        subject: cert.subject().to_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}
