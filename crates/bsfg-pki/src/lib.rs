//! The zone PKI, one implementation for `bsfgctl pki`, the zone simulator
//! and the test kit.
//!
//! | module | what |
//! |---|---|
//! | [`authority`] | the zone CA: generated, or an existing (intermediate) CA loaded from PEM; issues leaf certificates |
//! | [`plan`] | the certificate plan of a zone (`modules/lib/pki.nix`, in `zone.json` as `pki`) |
//! | [`issue`] | issuing a plan and installing the files, with their modes |
//! | [`inspect`] | what a certificate says (subject, SANs, validity, issuer) and the pure expiry classification |
//! | [`rollover`] | a zone CA rollover's steps (begin, reissue, finish), their order and the trust bundle |
//! | [`files`] | writing certificate and key files atomically with their modes |

pub mod authority;
pub mod files;
pub mod inspect;
pub mod issue;
pub mod plan;
pub mod rollover;

pub use authority::{Authority, Issued, LeafRequest, Usage, Validity};
pub use inspect::{CertificateFacts, Expiry};
pub use plan::Plan;

/// Everything that can go wrong, by kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Certificate { what: String, reason: String },
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
    pub(crate) fn cert(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Certificate {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
