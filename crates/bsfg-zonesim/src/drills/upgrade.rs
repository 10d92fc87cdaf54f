//! Drill `rolling-upgrade`: under load, every daemon of every host is
//! replaced by a new build (a second copy of the binaries at a new path) in
//! the order `bsfgctl upgrade plan` prints: gamma, the standby, a planned
//! handover, the old active. Each rebuild does what `nixos-rebuild switch`
//! does to a host: the next generation's files (the same files, pointing
//! at the new binaries), the changed daemons stopped (nats-server in
//! lame-duck mode) and started again. In the process mode the simulator
//! stops and starts the processes itself; under `--init systemd` the
//! containers' units are switched as switch-to-configuration does it
//! ([`Zone::switch_container`]: the library's `restartIfChanged` decides).
//! Before every step the drill waits until `bsfgctl upgrade check`, run
//! from the management network as an operator runs it, says the step is
//! safe; at the end every daemon and controller runs from the new build.
//! Then the rollback (`nixos-rebuild switch --rollback`, docs/runbooks/
//! upgrade.md): the same plan again, each host switched back onto the
//! previous generation, until every daemon runs the old build again.

use super::ctx::{contract, hosts};
use super::{Ctx, PROMOTION_TIMEOUT, service_probe};
use crate::container::Init;
use crate::container::machine::{JournalEntry, SIM_STATE};
use crate::netns;
use crate::processes::Kind;
use crate::zone::Zone;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long `upgrade check` may take to call the next step safe (a
/// restarted server catching up, VRRP settling after the handover).
const SAFE_TIMEOUT: Duration = Duration::from_secs(120);

/// One step of `bsfgctl upgrade plan --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub host: String,
    pub handover: bool,
}

/// Pure: the steps of `bsfgctl --json upgrade plan`'s output, in order.
pub fn planned_steps(plan: &serde_json::Value) -> Result<Vec<PlannedStep>> {
    let steps = plan["steps"]
        .as_array()
        .with_context(|| format!("no steps in the plan: {plan}"))?;
    steps
        .iter()
        .map(|s| {
            let host = s["host"].as_str().context("a step without a host")?;
            let handover = match s["action"].as_str() {
                Some("rebuild") => false,
                Some("handover") => true,
                other => bail!("unknown step action {other:?}"),
            };
            Ok(PlannedStep {
                host: host.to_owned(),
                handover,
            })
        })
        .collect()
}

/// Pure: a file of the next generation, `text` with every old binary path
/// replaced by the new build's.
pub fn next_generation(text: &str, renames: &[(PathBuf, PathBuf)]) -> String {
    renames.iter().fold(text.to_owned(), |t, (old, new)| {
        t.replace(&old.display().to_string(), &new.display().to_string())
    })
}

/// A generation to switch to: the current → its path of every program, as
/// the files of a generation name them, and where every process must run
/// from once every host is on it.
struct Generation {
    name: &'static str,
    renames: Vec<(PathBuf, PathBuf)>,
    runs_from: Vec<PathBuf>,
}

impl Generation {
    /// The rollback from `self`: every path back; the processes then run
    /// from `runs_from` (the old programs, as the files name them and, under
    /// systemd, where they lie on this machine).
    fn previous(&self, runs_from: Vec<PathBuf>) -> Generation {
        Generation {
            name: "the previous build",
            renames: self
                .renames
                .iter()
                .map(|(old, new)| (new.clone(), old.clone()))
                .collect(),
            runs_from,
        }
    }
}

/// Copies `source` to `dest`, executable (root-owned all the way up, as
/// keepalived's script security wants).
fn install(source: &Path, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(source, dest)
        .with_context(|| format!("copying {} to {}", source.display(), dest.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The new build: a copy of each binary the zone runs in
/// `<run dir>/bin-next/`. Under systemd a container sees only what is bound
/// into it, so each host gets the copy (hard links) in its state directory,
/// which every container has at `/var/lib/bsfg-zonesim`.
/// Returns the new build and the rollback to the old one.
fn copy_build(z: &Zone) -> Result<(Generation, Generation)> {
    let dir = z.run_dir.join("bin-next");
    crate::zone::files::mkdir(&dir)?;
    if z.init() == Init::Systemd {
        let inside = Path::new(SIM_STATE).join("bin-next");
        let hosts: Vec<PathBuf> = z
            .spec
            .host_names()
            .iter()
            .map(|h| z.run_dir.join(h).join("bin-next"))
            .collect();
        for d in &hosts {
            crate::zone::files::mkdir(d)?;
        }
        let mut renames = Vec::new();
        // The old programs inside (as the files name them) and outside.
        let mut old_programs = Vec::new();
        for (old, source) in z.container_programs()? {
            let name = old
                .file_name()
                .context("a program without a name")?
                .to_owned();
            let copy = dir.join(&name);
            install(&source, &copy)?;
            for d in &hosts {
                let link = d.join(&name);
                let _ = std::fs::remove_file(&link);
                if std::fs::hard_link(&copy, &link).is_err() {
                    install(&copy, &link)?;
                }
            }
            old_programs.push(old.clone());
            renames.push((old, inside.join(&name)));
            old_programs.push(source);
        }
        let mut runs_from = hosts;
        runs_from.push(inside);
        let next = Generation {
            name: "the new build",
            renames,
            runs_from,
        };
        let previous = next.previous(old_programs);
        return Ok((next, previous));
    }
    let t = z.tools();
    let mut renames = Vec::new();
    for old in [&t.controller, &t.gate_agent, &t.nats_server, &t.keepalived] {
        let name = old.file_name().context("a binary without a name")?;
        let new = dir.join(name);
        install(old, &new)?;
        renames.push((old.clone(), new));
    }
    let old_programs = renames.iter().map(|(old, _)| old.clone()).collect();
    let next = Generation {
        name: "the new build",
        renames,
        runs_from: vec![dir],
    };
    let previous = next.previous(old_programs);
    Ok((next, previous))
}

/// `argv` with its program replaced by the generation's (kept if it is the
/// generation's already: the simulator's command lines name the first build).
fn upgraded(argv: &[String], renames: &[(PathBuf, PathBuf)]) -> Result<Vec<String>> {
    let (program, rest) = argv.split_first().context("an empty command line")?;
    let (_, target) = renames
        .iter()
        .find(|(old, new)| Path::new(program) == old || Path::new(program) == new)
        .with_context(|| format!("{program} is not a binary of the zone"))?;
    Ok(std::iter::once(target.display().to_string())
        .chain(rest.iter().cloned())
        .collect())
}

/// `bsfgctl --json <args>` in the management namespace, with the producer's
/// identity and the zone file the simulator wrote (`client/zone.json`).
/// Returns the exit code and the JSON printed.
fn bsfgctl(z: &Zone, args: &[&str]) -> Result<(Option<i32>, serde_json::Value)> {
    let bin = bsfg_testkit::bins::find_workspace_binary("bsfgctl", None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (producer, _) = z.client_tls();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &z.ns(netns::MGMT)])
        .arg(&bin)
        .arg("--json")
        .args(args)
        .env("BSFG_CLI_ZONE_FILE", z.run_dir.join("client/zone.json"))
        .env("BSFG_CLI_CERT", &producer.certificate)
        .env("BSFG_CLI_KEY", &producer.private_key)
        .env("BSFG_CLI_CA", &producer.ca)
        .env("HOME", "/nonexistent")
        .output()
        .context("running bsfgctl")?;
    let json = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "bsfgctl {} printed no JSON: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code(), json))
}

/// `bsfgctl upgrade check`: whether taking one host down is safe now, and
/// if not, its blockers (every voter and replica current, one controller,
/// the standby ready).
pub fn upgrade_check(z: &Zone) -> Result<(bool, String)> {
    let (code, check) = bsfgctl(z, &["upgrade", "check"])?;
    Ok((
        code == Some(0) && check["safe"] == true,
        check["blockers"].to_string(),
    ))
}

/// Polls `bsfgctl upgrade check` (every second) until it says the next
/// step is safe; records a check with its last blockers if it never does.
async fn wait_safe(z: &Zone, c: &mut Ctx, before: &str) -> Result<()> {
    let name = format!("bsfgctl upgrade check: safe before {before}");
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SAFE_TIMEOUT {
        let (safe, blockers) = tokio::task::block_in_place(|| upgrade_check(z))?;
        if safe {
            c.check(
                &name,
                true,
                format!("safe (after {:.1} s)", start.elapsed().as_secs_f64()),
            );
            return Ok(());
        }
        last = blockers;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    c.check(&name, false, format!("not within {SAFE_TIMEOUT:?}: {last}"));
    bail!("the upgrade stopped: {before} never became safe ({last})")
}

/// `nixos-rebuild switch` of `host` onto `build`.
async fn rebuild(z: &Zone, c: &mut Ctx, host: &str, build: &Generation) -> Result<()> {
    c.event(format!("{host}: switching to {}", build.name));
    if z.init() == Init::Systemd {
        return switch_units(z, c, host, build);
    }
    let renames = &build.renames;
    let h = z.spec.host(host).clone();
    let dirs = z.host_dirs(host);
    let mut files = Vec::new();
    if h.runs.gate_agent {
        files.push(h.paths.agent_config.clone());
    }
    if h.runs.keepalived {
        files.push(dirs.keepalived_config.clone());
    }
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        std::fs::write(f, next_generation(&text, renames))
            .with_context(|| format!("writing {}", f.display()))?;
    }
    let switch = Instant::now();
    z.restart_host_onto(host, &|argv| upgraded(argv, renames))
        .await?;
    c.event(format!(
        "{host}: daemons stopped (nats-server in lame-duck mode) in {:.1} s",
        switch.elapsed().as_secs_f64()
    ));
    c.event(format!("{host}: every daemon started from {}", build.name));
    Ok(())
}

/// nats-server's line when SIGUSR2 puts it into lame-duck mode.
const LAME_DUCK_LINE: &str = "Entering lame duck mode";
/// nats-server's stdout identifier in the journal (ExecStart's program).
const NATS_PROGRAM: &str = "nats-server";
/// How long the lame-duck line may take to reach the journal after the
/// switch: journald writes a stream's lines after reading them, and the
/// check reads right after `systemctl start`.
const JOURNAL_WAIT: Duration = Duration::from_secs(5);

/// How often `program`'s journal has `line`: (all, of which journald
/// attributed to `unit`). A line of a process that exited before journald
/// read its cgroup has no `_SYSTEMD_UNIT` (pure: tested).
fn count_lines(entries: &[JournalEntry], unit: &str, line: &str) -> (usize, usize) {
    let with: Vec<&JournalEntry> = entries
        .iter()
        .filter(|e| e.message.contains(line))
        .collect();
    let attributed = with
        .iter()
        .filter(|e| e.unit.as_deref() == Some(unit))
        .count();
    (with.len(), attributed)
}

/// The systemd mode's switch: the units of `host`'s container, as
/// switch-to-configuration restarts them; checks that nats.service went
/// through lame-duck mode.
fn switch_units(z: &Zone, c: &mut Ctx, host: &str, build: &Generation) -> Result<()> {
    let nats = crate::zone::instance::unit_of(Kind::Nats)?;
    let lame_ducks = || -> Result<(usize, usize)> {
        let entries = z.program_journal(host, nats, NATS_PROGRAM)?;
        Ok(count_lines(&entries, nats, LAME_DUCK_LINE))
    };
    let before = tokio::task::block_in_place(lame_ducks)
        .with_context(|| format!("reading {nats}'s journal on {host} before the switch"))?;
    let s = tokio::task::block_in_place(|| {
        z.switch_container(host, &|t| next_generation(t, &build.renames))
    })?;
    c.event(format!(
        "{host}: systemctl stop {} took {:.1} s; the next generation's files written, \
         systemctl daemon-reload, the units started again{}",
        s.restarted.join(" "),
        s.stop.as_secs_f64(),
        if s.left.is_empty() {
            String::new()
        } else {
            format!(
                "; changed, not restarted (restartIfChanged = false or not running): {}",
                s.left.join(" ")
            )
        }
    ));
    if s.restarted.iter().any(|u| u == nats) {
        let start = Instant::now();
        let after = tokio::task::block_in_place(|| {
            loop {
                let after = lame_ducks();
                match &after {
                    Ok((n, _)) if *n > before.0 => break after,
                    _ if start.elapsed() >= JOURNAL_WAIT => break after,
                    _ => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        let (ok, detail) = match after {
            Ok((n, attributed)) => (
                n > before.0,
                format!(
                    "{LAME_DUCK_LINE:?} in {NATS_PROGRAM}'s journal {} → {n} times \
                     ({} → {attributed} attributed to {nats}), read {:.1} s after the start",
                    before.0,
                    before.1,
                    start.elapsed().as_secs_f64()
                ),
            ),
            Err(e) => (false, format!("reading the journal: {e:#}")),
        };
        c.check(
            &format!("{nats} on {host} stopped in lame-duck mode (KillSignal=SIGUSR2)"),
            ok,
            detail,
        );
    }
    Ok(())
}

/// Every daemon of every host, and every controller, runs from `build`:
/// the process mode's records, or each running unit's main pid.
fn check_all_on(z: &Zone, c: &mut Ctx, build: &Generation) -> Result<()> {
    let mut old = Vec::new();
    let mut count = 0;
    for host in z.spec.host_names() {
        let pids: Vec<(String, u32)> = if z.init() == Init::Systemd {
            z.unit_main_pids(host)?
        } else {
            let mut pids: Vec<(String, u32)> = [Kind::Nats, Kind::GateAgent, Kind::Keepalived]
                .into_iter()
                .filter_map(|k| z.daemon(host, k).map(|d| (k.name().to_owned(), d.pid)))
                .collect();
            pids.extend(
                z.controller_pids(host)
                    .into_iter()
                    .map(|p| ("controller".to_owned(), p)),
            );
            pids
        };
        for (what, pid) in pids {
            count += 1;
            match std::fs::read_link(format!("/proc/{pid}/exe")) {
                Ok(exe) if build.runs_from.iter().any(|d| exe.starts_with(d)) => {}
                Ok(exe) => old.push(format!("{host} {what} runs {}", exe.display())),
                Err(e) => old.push(format!("{host} {what} ({pid}): {e}")),
            }
        }
    }
    c.check(
        &format!("every daemon and controller runs {}", build.name),
        old.is_empty() && count > 0,
        if old.is_empty() {
            format!("{count} processes")
        } else {
            old.join("; ")
        },
    );
    Ok(())
}

pub(super) async fn rolling_upgrade(z: &Zone, c: &mut Ctx) -> Result<()> {
    let [a, _, _] = z.spec.host_names().map(str::to_owned);
    // The upgrade's handover moves the service to beta, the rollback's
    // handover back to alpha.
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "Planned maintenance: the zone keeps serving, one controller at a time, nothing acknowledged lost",
        ),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    c.target = Some(a.clone());
    let (build, previous) = tokio::task::block_in_place(|| copy_build(z))?;
    c.fault("rolling upgrade begins");
    roll_onto(z, c, &build).await?;
    c.event("every host runs the new build");
    check_all_on(z, c, &build)?;

    c.event("rollback begins (nixos-rebuild switch --rollback, the same order)");
    roll_onto(z, c, &previous).await?;
    c.fault_ended("every host runs the previous build again");
    check_all_on(z, c, &previous)
}

/// The zone onto `build` in the order `bsfgctl upgrade plan` prints now,
/// gamma's service probe asked throughout, as Prometheus asks it.
async fn roll_onto(z: &Zone, c: &mut Ctx, build: &Generation) -> Result<()> {
    let (_, plan) = tokio::task::block_in_place(|| bsfgctl(z, &["upgrade", "plan"]))?;
    let steps = planned_steps(&plan)?;
    c.event(format!(
        "bsfgctl upgrade plan (onto {}): {}",
        build.name,
        steps
            .iter()
            .map(|s| format!(
                "{} {}",
                if s.handover { "hand over" } else { "switch" },
                s.host
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (rolled, probed) = tokio::join!(
        async {
            let r = roll(z, c, &steps, build).await;
            stop.store(true, Ordering::Relaxed);
            r
        },
        service_probe::watch(z, stop.clone())
    );
    rolled?;
    for (check, seen) in probed? {
        c.check(
            &format!(
                "gamma's service probe ({check}) saw the VIP serving throughout the switch onto {}",
                build.name
            ),
            seen.continuous(),
            format!(
                "{} probes: {} SERVING, {} failed (longest {:.1} s; the drill allows {:?}, \
                 BsfgServiceProbeFailing 1 min), {} unanswered by the exporter (restarting with its host)",
                seen.probes,
                seen.serving,
                seen.failed,
                seen.longest_failing_s,
                service_probe::MAX_FAILING,
                seen.unreachable
            ),
        );
    }
    wait_safe(z, c, &format!("the end (every host on {})", build.name)).await
}

/// Every step of the plan, each once `upgrade check` calls it safe.
async fn roll(z: &Zone, c: &mut Ctx, steps: &[PlannedStep], build: &Generation) -> Result<()> {
    let [a, b, _] = z.spec.host_names().map(str::to_owned);
    let v = c.samples();
    for s in steps {
        let what = if s.handover {
            format!("the handover from {}", s.host)
        } else {
            format!("switching {} onto {}", s.host, build.name)
        };
        wait_safe(z, c, &what).await?;
        if s.handover {
            c.event(format!(
                "{}: gate agent restarted (planned handover)",
                s.host
            ));
            z.restart_agent(&s.host).await?;
            let to = if s.host == a { b.clone() } else { a.clone() };
            c.wait_for(
                &format!("{to} holds the VIP and serves after the handover"),
                PROMOTION_TIMEOUT,
                || super::scenarios::serves(&v, &to),
            )
            .await;
        } else {
            rebuild(z, c, &s.host, build).await?;
        }
        c.wait_acks(
            &format!("appends acknowledged after {what}"),
            10,
            PROMOTION_TIMEOUT,
        )
        .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lame_duck_lines_are_counted_with_their_attribution() {
        let entry = |message: &str, unit: Option<&str>| JournalEntry {
            message: message.into(),
            unit: unit.map(str::to_owned),
            identifier: Some(NATS_PROGRAM.into()),
        };
        let line = "[7] 2026/12/04 15:00:00.000000 [INF] Entering lame duck mode, stop accepting new clients";
        let entries = [
            entry(line, Some("nats.service")),
            entry("[7] Server Exiting..", Some("nats.service")),
            // Logged as the process exited: journald found no cgroup.
            entry(line, None),
            entry(line, Some("other.service")),
        ];
        assert_eq!(
            count_lines(&entries, "nats.service", LAME_DUCK_LINE),
            (3, 1)
        );
        assert_eq!(count_lines(&[], "nats.service", LAME_DUCK_LINE), (0, 0));
    }

    #[test]
    fn the_plan_is_read_in_order() {
        let plan = serde_json::json!({"steps": [
            {"host": "gamma", "action": "rebuild"},
            {"host": "beta", "action": "rebuild"},
            {"host": "alpha", "action": "handover"},
            {"host": "alpha", "action": "rebuild"},
        ]});
        let s = planned_steps(&plan).unwrap();
        let got: Vec<(&str, bool)> = s.iter().map(|s| (s.host.as_str(), s.handover)).collect();
        assert_eq!(
            got,
            [
                ("gamma", false),
                ("beta", false),
                ("alpha", true),
                ("alpha", false)
            ]
        );
        let bad = serde_json::json!({"steps": [{"host": "gamma", "action": "reboot"}]});
        assert!(planned_steps(&bad).is_err());
        assert!(planned_steps(&serde_json::json!({})).is_err());
    }

    #[test]
    fn the_next_generation_points_at_the_new_build() {
        let renames = [(
            PathBuf::from("/old/bsfg-controller"),
            PathBuf::from("/run/x/bin-next/bsfg-controller"),
        )];
        let text = "command = [\"/old/bsfg-controller\", \"--config\", \"/old/c.toml\"]\n";
        assert_eq!(
            next_generation(text, &renames),
            "command = [\"/run/x/bin-next/bsfg-controller\", \"--config\", \"/old/c.toml\"]\n"
        );
        let argv = ["/old/bsfg-controller".to_owned(), "-c".to_owned()];
        assert_eq!(
            upgraded(&argv, &renames).unwrap(),
            ["/run/x/bin-next/bsfg-controller", "-c"]
        );
        assert!(upgraded(&["/bin/sh".to_owned()], &renames).is_err());
    }

    #[test]
    fn the_rollback_points_every_file_and_command_back_at_the_old_build() {
        let new = Generation {
            name: "the new build",
            renames: vec![(
                PathBuf::from("/old/bsfg-controller"),
                PathBuf::from("/run/x/bin-next/bsfg-controller"),
            )],
            runs_from: vec![PathBuf::from("/run/x/bin-next")],
        };
        let back = new.previous(vec![PathBuf::from("/old/bsfg-controller")]);
        let upgraded_text = "command = [\"/run/x/bin-next/bsfg-controller\"]\n";
        assert_eq!(
            next_generation(upgraded_text, &back.renames),
            "command = [\"/old/bsfg-controller\"]\n"
        );
        // The simulator's command lines name the first build: kept as they are.
        let argv = ["/old/bsfg-controller".to_owned(), "-c".to_owned()];
        assert_eq!(upgraded(&argv, &back.renames).unwrap(), argv);
        assert_eq!(back.runs_from, [PathBuf::from("/old/bsfg-controller")]);
    }
}
