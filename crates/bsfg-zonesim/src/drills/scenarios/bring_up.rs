//! The VM twins' bring-up and boot semantics: what a zone looks like
//! once up, and that only the agent ever starts a controller.

use super::{Ctx, PROMOTION_TIMEOUT, hosts};
use super::{
    append_extra, check_started_by_agent, crash, keepalived_reports, listeners, one_on_the_vip,
    only_on, roles, serves, stays_one_on_the_vip, unchanged,
};
use crate::zone::Zone;
use anyhow::{Context, Result};
use bsfg_mgmt::Role;
use std::time::Duration;

pub(super) async fn bring_up(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, g) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: "VM test bring-up: 3 voters; VIP and controller on alpha only; controller on the VIP only".into(),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    for h in [&a, &b, &g] {
        let p = z.placement(h).await;
        let ok = p
            .as_ref()
            .is_ok_and(|p| p.cluster_size == 3 && p.meta_leader.is_some());
        c.check(
            &format!("{h} sees a 3-voter JetStream cluster with a meta leader"),
            ok,
            format!("{:?}", p.map(|p| (p.cluster_size, p.meta_leader))),
        );
    }
    c.check(
        "the VIP on alpha only",
        v.vip() == [a.clone()],
        format!("{:?}", v.vip()),
    );
    c.check(
        "a controller serves on alpha only",
        v.serving() == [a.clone()],
        format!("{:?}", v.serving()),
    );
    let bs = z.agent_status(&b).await?;
    c.check(
        "beta is standby with no controller process",
        bs.role == Role::Standby && z.controller_pids(&b).is_empty(),
        format!("role {}, controller {}", bs.role, bs.controller.process),
    );
    let names = z.process_names(&g);
    // The service probe (Debian's blackbox exporter; the kernel keeps 15
    // characters of the name) runs there too: the process mode runs it as
    // Debian names it, gamma's container as nixpkgs' unit does. So does the
    // node exporter (Debian's prometheus-node-exporter; nixpkgs' unit runs
    // node_exporter).
    let (probe, node) = match z.init() {
        crate::container::Init::Process => ("prometheus-blac", "prometheus-node"),
        crate::container::Init::Systemd => ("blackbox_export", "node_exporter"),
    };
    let mut expected = vec!["nats-server"];
    if z.spec.host(&g).runs.probe {
        expected.push(probe);
    }
    expected.push(node);
    // process_names is sorted.
    expected.sort_unstable();
    c.check(
        "gamma runs nats-server (its node exporter and service probe) only: no agent, keepalived, controller",
        names == expected,
        format!("{names:?}"),
    );
    let g_artifacts = &z.spec.host(&g).paths.artifacts;
    c.check(
        "gamma has no artifact storage",
        !g_artifacts.exists(),
        g_artifacts.display().to_string(),
    );
    check_started_by_agent(z, c, &a);
    if z.init() == crate::container::Init::Systemd {
        // The VM test's limits (tests/scripts/bring_up.py).
        for (unit, limit) in [
            ("bsfg-controller.service", 3.0),
            ("bsfg-gate-agent.service", 4.5),
        ] {
            let e = z.exposure(&a, unit);
            c.check(
                &format!("`systemd-analyze security {unit}` exposure ≤ {limit}"),
                e.as_ref().is_ok_and(|e| *e <= limit),
                format!("{e:?}"),
            );
        }
        backup_runs_once(z, c, &g);
        artifact_backup_runs_once(z, c, &a, &b).await;
    }
    let port = z.spec.ports.controller;
    let on_a = listeners(z, &a, port)?;
    let vip = format!("{}:{port}", z.spec.vip.address);
    c.check(
        "the controller listens on the VIP only, never a wildcard",
        on_a == [vip],
        format!("{on_a:?}"),
    );
    let on_b = listeners(z, &b, port)?;
    c.check(
        "nothing listens on the service port on beta",
        on_b.is_empty(),
        format!("{on_b:?}"),
    );
    for h in [&a, &b, &g] {
        let nats = listeners(z, h, z.spec.ports.nats_client)?;
        c.check(
            &format!("the NATS client port is on localhost only ({h})"),
            nats == [format!("127.0.0.1:{}", z.spec.ports.nats_client)],
            format!("{nats:?}"),
        );
    }
    let ids: Vec<String> = (0..5)
        .map(|i| format!("bring-up-{}-{i}", z.instance))
        .collect();
    for id in &ids {
        append_extra(z, c, id, false).await?;
    }
    for id in &ids {
        append_extra(z, c, id, true).await?;
    }
    c.check(
        "5 appends repeated with the same message_id are acknowledged as duplicates",
        !c.checks
            .iter()
            .any(|k| k.name.starts_with("a repeated message_id") && !k.passed),
        "read back below: each exactly once",
    );
    c.hold(
        "nothing changes while the zone runs",
        Duration::from_secs(5),
        || unchanged(z, &v, &a, &b),
    )
    .await;
    Ok(())
}

pub(super) async fn boot(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, g) = roles(z);
    let v = c.samples();
    c.expected.summary =
        "seed Bootstrap Semantics + VM test boot-semantics: start order not significant; \
                          the controller starts only through the gate agent, on the VIP holder"
            .into();
    check_started_by_agent(z, c, &a);
    crash(
        z,
        c,
        &[&a, &b, &g],
        "power cycle: every host crashes; beta boots alone".into(),
    )?;
    z.restore(&b)?;
    c.wait_for("beta's keepalived runs", PROMOTION_TIMEOUT, || {
        keepalived_reports(z, &b)
    })
    .await;
    c.hold(
        "beta alone: no controller without quorum",
        Duration::from_secs(8),
        || {
            let v = v.clone();
            let b = b.clone();
            async move {
                if !v.serving().is_empty() || !z.controller_pids(&b).is_empty() {
                    return Err(format!("a controller runs on {b}"));
                }
                Ok(())
            }
        },
    )
    .await;
    c.event(format!("{g} boots"));
    z.restore(&g)?;
    c.wait_for(
        "beta promotes through its agent once gamma gives quorum",
        Duration::from_secs(90),
        || serves(&v, &b),
    )
    .await;
    check_started_by_agent(z, c, &b);
    c.event(format!("{a} boots last"));
    z.restore(&a)?;
    z.wait_formed(&[&a], PROMOTION_TIMEOUT).await?;
    c.wait_for("alpha's keepalived runs", PROMOTION_TIMEOUT, || {
        keepalived_reports(z, &a)
    })
    .await;
    c.hold(
        "alpha joins as standby: one controller, on beta",
        Duration::from_secs(6),
        || only_on(&v, &b),
    )
    .await;
    c.event("second power cycle: every host crashes, then all boot at once");
    crash(z, c, &[&a, &b, &g], "second power cycle".into())?;
    for h in [&a, &b, &g] {
        z.restore(h)?;
    }
    c.wait_for(
        "after the power cycle one controller serves, on the VIP holder",
        Duration::from_secs(120),
        || one_on_the_vip(&v),
    )
    .await;
    c.hold(
        "exactly one controller, on the VIP holder",
        Duration::from_secs(5),
        || stays_one_on_the_vip(&v),
    )
    .await;
    for h in [&a, &b] {
        if !z.controller_pids(h).is_empty() {
            check_started_by_agent(z, c, h);
        }
    }
    c.wait_acks("appends after the power cycle", 10, PROMOTION_TIMEOUT)
        .await;
    Ok(())
}

/// gamma's scheduled snapshots as the appliance deploys them: the timer
/// is enabled and waiting; the service, started once as the timer would,
/// succeeds (as its own user, its NATS password by LoadCredential=), and
/// the snapshot it left in its state directory reads back whole
/// (`bsfgctl restore --verify-only`, run here, independent of the unit).
fn backup_runs_once(z: &Zone, c: &mut Ctx, host: &str) {
    timer_waits(z, c, host, "bsfg-backup.timer");
    runs_once(z, c, host, "bsfg-backup.service");
    let state = z.run_dir.join(host).join("backup");
    let metrics = std::fs::read_to_string(state.join("bsfg-backup.prom")).unwrap_or_default();
    c.check(
        "its metrics file says the run succeeded",
        metrics.contains("\nbsfg_backup_last_run_success 1\n"),
        state.join("bsfg-backup.prom").display().to_string(),
    );
    let verified = snapshots_under(&state, "snapshot-")
        .last()
        .cloned()
        .context("no snapshot-* directory")
        .and_then(|dir| {
            let manifest = verify_with_bsfgctl("restore", &dir)?;
            let streams = manifest["streams"].as_array().map_or(0, Vec::len);
            anyhow::ensure!(streams > 0, "its manifest lists no stream");
            Ok(format!("{}: {streams} streams", dir.display()))
        });
    c.check(
        "the snapshot it took reads back whole (bsfgctl restore --verify-only)",
        verified.is_ok(),
        match verified {
            Ok(d) => d,
            Err(e) => format!("{e:#}"),
        },
    );
}

/// The artifact snapshots of the service hosts as the appliance deploys
/// them: both timers enabled and waiting; on the active host, after an
/// upload through the VIP, the service started once as the timer would
/// succeeds with its hardening (its own user, /artifacts read-only through
/// its group, no network), its metrics file says so, and the snapshot it
/// left in its state directory holds the uploaded blob and reads back
/// whole (`bsfgctl restore-artifacts --verify-only`, run here).
async fn artifact_backup_runs_once(z: &Zone, c: &mut Ctx, active: &str, standby: &str) {
    let service = "bsfg-artifact-backup.service";
    for h in [active, standby] {
        timer_waits(z, c, h, "bsfg-artifact-backup.timer");
    }
    let (tls, _) = z.client_tls();
    let endpoint = z.spec.endpoint();
    let key = format!("bring-up/{}.bin", z.instance);
    let data: Vec<u8> = format!("artifact of {}\n", z.instance)
        .bytes()
        .cycle()
        .take(64 * 1024)
        .collect();
    let put = z
        .in_ns(crate::netns::CLIENT, move || async move {
            crate::load::put_object(
                &endpoint,
                &tls,
                crate::load::ARTIFACT_BUCKET,
                &key,
                &data,
                Duration::from_secs(30),
            )
            .await
        })
        .await
        .and_then(|r| r);
    let digest = put.as_ref().map(|r| r.digest.clone()).unwrap_or_default();
    c.check(
        "an artifact uploaded through the VIP is acknowledged",
        put.is_ok(),
        match &put {
            Ok(r) => format!("{} ({} bytes)", r.digest, r.size),
            Err(e) => format!("{e:#}"),
        },
    );
    // Measured 0.6 (systemd 252): no network, no privilege, a read-only system.
    let limit = 1.0;
    let e = z.exposure(active, service);
    c.check(
        &format!("`systemd-analyze security {service}` exposure ≤ {limit}"),
        e.as_ref().is_ok_and(|e| *e <= limit),
        format!("{e:?}"),
    );
    runs_once(z, c, active, service);
    let state = z.run_dir.join(active).join("artifact-backup");
    let metrics_file = state.join("bsfg-artifact-backup.prom");
    let metrics = std::fs::read_to_string(&metrics_file).unwrap_or_default();
    let blobs = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bsfg_artifact_backup_last_success_blobs "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    c.check(
        "its metrics file says the run succeeded, with the uploaded blob",
        metrics.contains("\nbsfg_artifact_backup_last_run_success 1\n")
            && blobs.is_some_and(|b| b >= 1.0),
        format!("{}: blobs {blobs:?}", metrics_file.display()),
    );
    let verified = snapshots_under(&state, "artifacts-")
        .last()
        .cloned()
        .context("no artifacts-* directory")
        .and_then(|dir| {
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(&dir)?.uid();
            anyhow::ensure!(
                owner != 0,
                "{} is root's: the unit ran as root",
                dir.display()
            );
            let manifest = verify_with_bsfgctl("restore-artifacts", &dir)?;
            let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
            let names: Vec<&str> = manifest["blobs"]
                .as_array()
                .map(|b| b.iter().filter_map(|b| b["hex"].as_str()).collect())
                .unwrap_or_default();
            anyhow::ensure!(
                !hex.is_empty() && names.contains(&hex),
                "its manifest lacks the uploaded blob {digest}: {names:?}"
            );
            Ok(format!(
                "{}: {} blobs, owner uid {owner}",
                dir.display(),
                names.len()
            ))
        });
    c.check(
        "the artifact snapshot it took holds the upload and reads back whole (bsfgctl restore-artifacts --verify-only)",
        verified.is_ok(),
        match verified {
            Ok(d) => d,
            Err(e) => format!("{e:#}"),
        },
    );
}

/// A snapshot timer on `host` is enabled and waiting.
fn timer_waits(z: &Zone, c: &mut Ctx, host: &str, timer: &str) {
    let state = z
        .systemctl(host, &["is-active", timer])
        .unwrap_or_else(|e| format!("{e:#}"));
    c.check(
        &format!("{timer} on {host} is active (enabled, waiting)"),
        state.trim() == "active",
        state.trim(),
    );
}

/// Starts a oneshot `service` on `host` as its timer would; it succeeds.
fn runs_once(z: &Zone, c: &mut Ctx, host: &str, service: &str) {
    let ran = z
        .systemctl(host, &["start", service])
        .and_then(|_| z.systemctl(host, &["show", "-p", "Result", "--value", service]));
    c.check(
        &format!("{service} on {host} ran once and succeeded"),
        ran.as_ref().is_ok_and(|r| r.trim() == "success"),
        match &ran {
            Ok(r) => format!("Result={}", r.trim()),
            Err(e) => format!("{e:#}\n{}", z.unit_journal(host, service)),
        },
    );
}

/// `bsfgctl <restore> --verify-only --from <dir>` on this machine, outside
/// the container; the snapshot's manifest.
fn verify_with_bsfgctl(restore: &str, dir: &std::path::Path) -> Result<serde_json::Value> {
    let bin = bsfg_testkit::bins::find_workspace_binary("bsfgctl", None)?;
    let out = std::process::Command::new(bin)
        .args([restore, "--verify-only", "--from"])
        .arg(dir)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(serde_json::from_slice(&std::fs::read(
        dir.join("manifest.json"),
    )?)?)
}

/// Directories named `<prefix>*` up to two levels below `dir`, sorted.
fn snapshots_under(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let list = |d: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()
    };
    let mut found: Vec<_> = list(dir)
        .into_iter()
        .flat_map(|d| {
            let mut v = list(&d);
            v.push(d);
            v
        })
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    found.sort();
    found
}
