//! The files a person or a test uses to talk to the zone with `bsfgctl`.

use super::options::Options;
use super::progress::Progress;
use super::spec::ZoneSpec;
use super::workload::Workload;
use anyhow::{Context, Result};
use std::path::Path;

/// `bsfgctl` configuration files for the producer and the reader
/// (`<run dir>/client/bsfgctl-<identity>.toml`), and the zone as `bsfgctl
/// zone status` reads it (`client/zone.json`, from `modules/lib/operator.nix`
/// with this run directory). The latter is a convenience: if the operator
/// view cannot be evaluated, the configuration files omit it.
pub(super) fn write_cli_files(
    opts: &Options,
    spec: &ZoneSpec,
    w: &Workload,
    run_dir: &Path,
    progress: &Progress,
) -> Result<()> {
    let dir = run_dir.join("client");
    let zone_json = dir.join("zone.json");
    let expr = format!(
        "import {} {{ zone = import {}; runDir = {}; }}",
        super::spec::nix_string(
            &opts
                .repo
                .join("modules/lib/operator.nix")
                .display()
                .to_string()
        ),
        super::spec::nix_string(&opts.zone_file.display().to_string()),
        super::spec::nix_string(&run_dir.display().to_string()),
    );
    let zone_file = match super::spec::eval_json(&expr, "modules/lib/operator.nix") {
        Ok(json) => {
            std::fs::write(&zone_json, &json)
                .with_context(|| format!("writing {}", zone_json.display()))?;
            Some(zone_json)
        }
        Err(e) => {
            progress.say(format!("no zone.json for bsfgctl ({e:#})"));
            None
        }
    };
    for id in [&w.producer, &w.reader] {
        let mut config = toml::Table::new();
        config.insert("endpoint".into(), spec.endpoint().into());
        config.insert(
            "cert".into(),
            dir.join(format!("{id}.pem")).display().to_string().into(),
        );
        config.insert(
            "key".into(),
            dir.join(format!("{id}.key")).display().to_string().into(),
        );
        config.insert("ca".into(), dir.join("ca.pem").display().to_string().into());
        config.insert("from_zone".into(), spec.zone.clone().into());
        if let Some(z) = &zone_file {
            config.insert("zone_file".into(), z.display().to_string().into());
        }
        let path = dir.join(format!("bsfgctl-{id}.toml"));
        std::fs::write(&path, toml::to_string(&config)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
