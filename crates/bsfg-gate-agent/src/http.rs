//! Plain HTTP to management endpoints: shared with the CLI and the tests.

pub use bsfg_client::http::{get, get_json, post};
