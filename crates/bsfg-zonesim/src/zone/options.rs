//! How one instance is named and where its inputs are.

use crate::state;
use std::path::{Path, PathBuf};

/// How one instance is named and where its inputs are.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefixes the namespaces (`<instance>-alpha`) and names the run directory.
    pub instance: String,
    /// Parent of the run directory (`<run_root>/<instance>`).
    pub run_root: PathBuf,
    /// The repository (for `modules/lib/simulator.nix`).
    pub repo: PathBuf,
    /// The zone description.
    pub zone_file: PathBuf,
    /// Where bsfg-controller and bsfg-gate-agent are.
    pub bin_dir: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
    /// What runs the hosts' daemons (`--init`).
    pub init: crate::container::Init,
}

impl Options {
    pub fn new(instance: &str) -> Options {
        let repo = default_repo();
        Options {
            instance: instance.to_owned(),
            run_root: state::DEFAULT_RUN_ROOT.into(),
            zone_file: repo.join("hosts/zone.nix"),
            repo,
            bin_dir: None,
            quiet: false,
            init: crate::container::Init::Process,
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.run_root.join(&self.instance)
    }
}

/// The repository this simulator was built from (`$BSFG_REPO` overrides).
pub fn default_repo() -> PathBuf {
    std::env::var_os("BSFG_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .nth(2)
                .expect("crates/bsfg-zonesim is two levels below the repository")
                .to_path_buf()
        })
}
