//! `bsfgctl`, the operator CLI of a BSFG zone.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the clap command tree (also used for completions and the man page) |
//! | [`identity`] | mTLS identity and endpoint: flags, `BSFG_CLI_*`, config file |
//! | [`exit`] | exit codes scripts rely on, and the error type that carries them |
//! | [`commands`] | `append`, `fetch`, `confirm`, `tail`, `put-object`, `get-object` |
//! | [`zone`] | the zone description, what is collected from each host, `zone status` |
//! | [`backup`] | `backup` and `restore`: JetStream stream snapshots, read back |
//! | [`commission`] | the commissioning checklist (pure evaluation) and its drill |
//! | [`install`] | the installer's disk selection (pure: the declared disks, lsblk) |
//! | [`pki`] | `pki init/issue/renew/check`: the zone CA and the certificate plan, with bsfg-pki |
//! | [`output`] | table rendering |
//! | [`storepath`] | Nix store paths (the appliance version) |
//!
//! The documents read from the daemons and nats-server, and the HTTP client
//! that reads them, are the management-plane contract in [`bsfg_mgmt`].
//!
//! Pure logic (checklist evaluation, table rendering, store-path parsing) is
//! in functions tested directly; the only I/O is in `commands`,
//! `zone::collect` and `commission::drill`.

pub mod backup;
pub mod cli;
pub mod commands;
pub mod commission;
pub mod exit;
pub mod identity;
pub mod install;
pub mod output;
pub mod pki;
pub mod storepath;
pub mod upgrade;
pub mod zone;
