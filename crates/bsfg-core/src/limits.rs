//! Every size and count limit the controller enforces, with its default.
//! All of them are configuration (`[limits]` in the controller's TOML).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest encoded `Fact` (protobuf bytes) accepted by `AppendFact`.
    pub max_fact_bytes: usize,
    /// Longest name (zone, class, consumer, bucket, kind, identity, message id, label key).
    pub max_name_len: usize,
    /// Longest `subject` (`kind:scope/id`) and `predicate`.
    pub max_subject_len: usize,
    /// Longest object key.
    pub max_object_key_len: usize,
    /// Most labels on one envelope.
    pub max_labels: usize,
    /// Longest label value, in bytes.
    pub max_label_value_len: usize,
    /// Most facts one `FetchFacts` page returns (larger `limit`s are capped to this).
    pub max_page_facts: u32,
    /// Page size when a `FetchFacts` request leaves `limit` at 0.
    pub default_page_facts: u32,
    /// Largest artifact `PutObject` accepts.
    pub max_object_bytes: u64,
    /// Store-buffer fill (percent of the class's `max_bytes`) from which `AppendFact`
    /// is rejected with `store_buffer_full`.
    pub store_buffer_reject_percent: u8,
    /// Largest request body accepted on the Connect (HTTP) path for unary calls.
    pub max_connect_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_fact_bytes: 256 * 1024,
            max_name_len: 128,
            max_subject_len: 512,
            max_object_key_len: 512,
            max_labels: 32,
            max_label_value_len: 1024,
            max_page_facts: 1000,
            default_page_facts: 100,
            max_object_bytes: 256 * 1024 * 1024,
            store_buffer_reject_percent: 80,
            max_connect_body_bytes: 512 * 1024,
        }
    }
}

impl Limits {
    /// The page size a `FetchFacts` request actually gets.
    pub fn page_size(&self, requested: u32) -> u32 {
        match requested {
            0 => self.default_page_facts.min(self.max_page_facts),
            n => n.min(self.max_page_facts),
        }
    }

    /// Checks the limits are coherent; returns the offending key and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_page_facts == 0 {
            return Err(("limits.max_page_facts", "must be at least 1".into()));
        }
        if self.store_buffer_reject_percent == 0 || self.store_buffer_reject_percent > 100 {
            return Err((
                "limits.store_buffer_reject_percent",
                "must be between 1 and 100".into(),
            ));
        }
        if self.max_fact_bytes < 256 {
            return Err(("limits.max_fact_bytes", "must be at least 256 bytes".into()));
        }
        if self.max_connect_body_bytes < self.max_fact_bytes {
            return Err((
                "limits.max_connect_body_bytes",
                format!("must be at least max_fact_bytes ({})", self.max_fact_bytes),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_caps_and_defaults() {
        let l = Limits {
            max_page_facts: 50,
            default_page_facts: 20,
            ..Limits::default()
        };
        assert_eq!(l.page_size(0), 20);
        assert_eq!(l.page_size(10), 10);
        assert_eq!(l.page_size(5000), 50);
    }

    #[test]
    fn incoherent_limits_name_their_key() {
        let l = Limits {
            store_buffer_reject_percent: 0,
            ..Limits::default()
        };
        assert_eq!(
            l.check().unwrap_err().0,
            "limits.store_buffer_reject_percent"
        );
        Limits::default().check().unwrap();
    }
}
