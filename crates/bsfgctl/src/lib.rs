//! `bsfgctl`, the operator CLI of a BSFG zone.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the clap command tree (also used for completions and the man page) |
//! | [`identity`] | mTLS identity and endpoint: flags, `BSFG_CLI_*`, config file |
//! | [`exit`] | exit codes scripts rely on, and the error type that carries them |
//! | [`commands`] | `append`, `fetch`, `confirm`, `tail`, `put-object`, `get-object` |
//! | [`zone`] | the zone description, what is collected from each host, `zone status` |
//! | [`commission`] | the commissioning checklist (pure evaluation) and its drill |
//! | [`output`] | table rendering |
//! | [`storepath`] | Nix store paths (the appliance version) |
//! | [`http`] | a minimal HTTP/1.1 GET for management endpoints |
//!
//! Pure logic (checklist evaluation, table rendering, store-path parsing,
//! JetStream monitoring parsing) is in functions tested directly; the only
//! I/O is in `commands`, `zone::collect`, `commission::drill` and `http`.

pub mod cli;
pub mod commands;
pub mod commission;
pub mod exit;
pub mod http;
pub mod identity;
pub mod output;
pub mod storepath;
pub mod zone;
