//! Authorisation: who may append, consume, read and write what.
//!
//! The caller's identity is its client certificate's CN (or first DNS SAN),
//! lower-cased. Policy is declared per zone in the controller configuration;
//! anything not granted there is `PERMISSION_DENIED`.

use crate::config::ControllerConfig;
use crate::error::{BsfgError, Reason};
use std::collections::{BTreeMap, BTreeSet};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity(String);

impl Identity {
    /// Identities compare case-insensitively (they are DNS-like names).
    pub fn new(name: &str) -> Identity {
        Identity(name.to_ascii_lowercase())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The zone's authorisation policy, built once from configuration.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    zone: String,
    append: BTreeMap<String, BTreeSet<String>>,
    consume: BTreeMap<String, BTreeSet<String>>,
    read: BTreeMap<String, BTreeSet<String>>,
    write: BTreeMap<String, BTreeSet<String>>,
    /// peer identity → peer zone
    peer_zones: BTreeMap<String, String>,
}

fn granted(set: Option<&BTreeSet<String>>, who: &Identity) -> bool {
    set.is_some_and(|s| s.contains("*") || s.contains(who.as_str()))
}

impl Policy {
    pub fn from_config(c: &ControllerConfig) -> Policy {
        Policy {
            zone: c.zone.clone(),
            append: c
                .classes
                .iter()
                .map(|(k, v)| (k.clone(), v.append.clone()))
                .collect(),
            consume: c
                .consumers
                .iter()
                .map(|(k, v)| (k.clone(), v.allowed.clone()))
                .collect(),
            read: c
                .buckets
                .iter()
                .map(|(k, v)| (k.clone(), v.read.clone()))
                .collect(),
            write: c
                .buckets
                .iter()
                .map(|(k, v)| (k.clone(), v.write.clone()))
                .collect(),
            peer_zones: c
                .peers
                .iter()
                .map(|(zone, p)| (p.identity.clone(), zone.clone()))
                .collect(),
        }
    }

    fn deny(who: &Identity, what: String) -> BsfgError {
        Reason::NotAuthorized.err(format!("identity {who:?} may not {what}"))
    }

    /// The class must exist (`unknown_stream_class`) and the caller may append to it.
    pub fn authorize_append(&self, who: &Identity, class: &str) -> Result<(), BsfgError> {
        let set = self.append.get(class).ok_or_else(|| {
            Reason::UnknownStreamClass.err(format!("stream class {class:?} is not declared"))
        })?;
        if granted(Some(set), who) {
            Ok(())
        } else {
            Err(Self::deny(who, format!("append to class {class:?}")))
        }
    }

    /// `from_zone` must be the caller's zone: a peer's own zone for a peer
    /// identity, this zone for every local producer.
    pub fn check_from_zone(&self, who: &Identity, from_zone: &str) -> Result<(), BsfgError> {
        let expected = self.peer_zones.get(who.as_str()).unwrap_or(&self.zone);
        if from_zone == expected {
            Ok(())
        } else {
            Err(Reason::ZoneMismatch.err(format!(
                "from_zone {from_zone:?} does not match zone {expected:?} of identity {who:?}"
            )))
        }
    }

    pub fn authorize_consumer(&self, who: &Identity, consumer: &str) -> Result<(), BsfgError> {
        let set = self.consume.get(consumer).ok_or_else(|| {
            Reason::UnknownConsumer.err(format!("consumer {consumer:?} is not declared"))
        })?;
        if granted(Some(set), who) {
            Ok(())
        } else {
            Err(Self::deny(who, format!("use consumer {consumer:?}")))
        }
    }

    pub fn authorize_read(&self, who: &Identity, bucket: &str) -> Result<(), BsfgError> {
        let set = self
            .read
            .get(bucket)
            .ok_or_else(|| unknown_bucket(bucket))?;
        if granted(Some(set), who) {
            Ok(())
        } else {
            Err(Self::deny(who, format!("read bucket {bucket:?}")))
        }
    }

    pub fn authorize_write(&self, who: &Identity, bucket: &str) -> Result<(), BsfgError> {
        let set = self
            .write
            .get(bucket)
            .ok_or_else(|| unknown_bucket(bucket))?;
        if granted(Some(set), who) {
            Ok(())
        } else {
            Err(Self::deny(who, format!("write bucket {bucket:?}")))
        }
    }
}

fn unknown_bucket(bucket: &str) -> BsfgError {
    Reason::UnknownBucket.err(format!("bucket {bucket:?} is not declared"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ControllerConfig;

    fn policy() -> Policy {
        let mut c: ControllerConfig = toml::from_str(crate::config::tests_example()).unwrap();
        c.check().unwrap();
        Policy::from_config(&c)
    }

    #[test]
    fn append_needs_a_declared_class_and_a_grant() {
        let p = policy();
        p.authorize_append(&Identity::new("MES-producer"), "operational")
            .unwrap();
        assert_eq!(
            p.authorize_append(&Identity::new("erp-reader"), "operational")
                .unwrap_err()
                .reason,
            Reason::NotAuthorized
        );
        assert_eq!(
            p.authorize_append(&Identity::new("mes-producer"), "audit")
                .unwrap_err()
                .reason,
            Reason::UnknownStreamClass
        );
    }

    #[test]
    fn from_zone_follows_the_identity() {
        let p = policy();
        p.check_from_zone(&Identity::new("mes-producer"), "plant-a")
            .unwrap();
        p.check_from_zone(&Identity::new("enterprise-bsfg"), "enterprise")
            .unwrap();
        assert_eq!(
            p.check_from_zone(&Identity::new("enterprise-bsfg"), "plant-a")
                .unwrap_err()
                .reason,
            Reason::ZoneMismatch
        );
        assert_eq!(
            p.check_from_zone(&Identity::new("mes-producer"), "enterprise")
                .unwrap_err()
                .reason,
            Reason::ZoneMismatch
        );
    }

    #[test]
    fn consumers_and_buckets() {
        let p = policy();
        p.authorize_consumer(&Identity::new("erp-reader"), "erp-orders")
            .unwrap();
        assert_eq!(
            p.authorize_consumer(&Identity::new("mes-producer"), "erp-orders")
                .unwrap_err()
                .reason,
            Reason::NotAuthorized
        );
        assert_eq!(
            p.authorize_consumer(&Identity::new("erp-reader"), "nope")
                .unwrap_err()
                .reason,
            Reason::UnknownConsumer
        );
        p.authorize_read(&Identity::new("erp-reader"), "drawings")
            .unwrap();
        p.authorize_write(&Identity::new("mes-producer"), "drawings")
            .unwrap();
        assert_eq!(
            p.authorize_write(&Identity::new("erp-reader"), "drawings")
                .unwrap_err()
                .reason,
            Reason::NotAuthorized
        );
        assert_eq!(
            p.authorize_read(&Identity::new("x"), "nope")
                .unwrap_err()
                .reason,
            Reason::UnknownBucket
        );
    }
}
