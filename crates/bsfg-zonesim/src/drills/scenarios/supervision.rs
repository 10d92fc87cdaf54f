//! Drills about who may run the controller when the gate agent is not
//! there to say: an agent killed and its controller orphaned, an agent that
//! crashes again and again, a host booted before its secrets exist.

use super::{
    Ctx, PROMOTION_TIMEOUT, check_cli_mentions, crash, hosts, one_on_the_vip, only_on, roles,
    serves, serves_again,
};
use crate::drills::outcome::Outcome;
use crate::processes::Kind;
use crate::zone::Zone;
use crate::zone::spec::AgentUnit;
use anyhow::{Context, Result};
use bsfg_mgmt::{GateId, Verdict};
use rustix::process::Signal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The agent's answer on `host`, if it answers.
async fn agent_answers(z: &Zone, host: &str) -> Option<String> {
    let s = z.agent_status(host).await.ok()?;
    Some(format!("{host}'s agent is {} ({})", s.role, s.role_reason))
}

/// The sequence: the active host's agent killed (SIGKILL: its
/// controller is orphaned), the host's cable out for 8 s and back, then the
/// new active controller frozen (SIGSTOP) past its lease TTL and resumed.
/// An orphaned controller must never take the lease without the VIP; the
/// zone serves again within seconds of the resume, with nobody acting.
pub(super) async fn orphaned_controller(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = Outcome {
        summary: "a controller without its agent and without the VIP never holds the lease \
                  (the lease follows the VIP; a dead agent cannot leave its host in charge); \
                  after the active controller pauses past its lease, the zone serves again \
                  without operator action"
            .into(),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.target = Some(b.clone());
    c.fault(format!(
        "{a}'s gate agent killed (SIGKILL): its controller is left without an agent"
    ));
    z.signal(&a, Kind::GateAgent, Signal::KILL)?;
    // Whatever keepalived does about the dead agent, the cable comes out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.event(format!("{a}'s cable pulled for 8 s"));
    z.set_cable(&a, false)?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    z.set_cable(&a, true)?;
    c.event(format!("{a}'s cable back"));
    // The pause below must find alpha's JetStream server back in the
    // cluster, able to write: that is when an orphaned controller there
    // could take the lease.
    let (_, _, g) = roles(z);
    z.wait_formed(&[&a, &g], PROMOTION_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.event(format!("{a}'s JetStream server is back in the cluster"));
    c.wait_for(
        "beta serves alone after alpha is back on the segment",
        PROMOTION_TIMEOUT,
        || async { only_on(&v, &b).await.ok().map(|()| format!("{b} alone")) },
    )
    .await;
    // From here on the VIP stays on beta: the lease must never name a host without it.
    c.lease_watch_from = Some(c.elapsed());
    let ttl = humantime::parse_duration(&z.spec.lease.ttl).unwrap_or(Duration::from_secs(1));
    let pause = (ttl * 3).max(Duration::from_secs(3));
    let frozen = z.signal_controllers(&b, Signal::STOP);
    c.event(format!(
        "{b}'s controller frozen (SIGSTOP, {frozen} process) for {pause:?}, past its {ttl:?} lease"
    ));
    tokio::time::sleep(pause).await;
    z.signal_controllers(&b, Signal::CONT);
    c.fault_ended(format!("{b}'s controller resumed (SIGCONT)"));
    c.wait_for(
        "the zone serves again: one controller, on the VIP holder",
        PROMOTION_TIMEOUT,
        || one_on_the_vip(&v),
    )
    .await;
    c.wait_acks(
        "appends acknowledged after the resume",
        20,
        PROMOTION_TIMEOUT,
    )
    .await;
    c.hold(
        "beta alone serves and holds the VIP",
        Duration::from_secs(5),
        || only_on(&v, &b),
    )
    .await;
    let alpha_controllers = z.controller_pids(&a);
    c.check(
        "no controller runs on alpha without its agent",
        alpha_controllers.is_empty(),
        format!("controller pids on {a}: {alpha_controllers:?}"),
    );
    // systemd restarts the agent (Restart=always): alpha rejoins as standby.
    c.event(format!("{a}'s gate agent started again"));
    z.start_agent(&a)?;
    c.wait_for(
        "alpha's restarted agent answers",
        Duration::from_secs(30),
        || agent_answers(z, &a),
    )
    .await;
    c.hold(
        "alpha rejoins without taking over (no failback)",
        Duration::from_secs(5),
        || only_on(&v, &b),
    )
    .await;
    let samples = v.since(c.lease_watch_from.unwrap_or_default());
    let read = samples.iter().filter(|s| s.lease.is_some()).count();
    let bad: Vec<String> = samples
        .iter()
        .filter_map(|s| {
            s.lease_without_vip()
                .map(|h| format!("{:.2} s: {h}", s.at.as_secs_f64()))
        })
        .collect();
    c.check(
        "at no sample does a host without the VIP hold the lease",
        read > 0 && bad.is_empty(),
        if bad.is_empty() {
            format!("{read} lease reads from the moment beta served alone")
        } else {
            format!(
                "{} of {read} samples, first: {:?}",
                bad.len(),
                &bad[..bad.len().min(5)]
            )
        },
    );
    Ok(())
}

/// The delay systemd waits before the `n`-th automatic restart (1-based) of
/// a unit with `RestartSec=`, `RestartSteps=`, `RestartMaxDelaySec=`: from
/// `RestartSec` up to `RestartMaxDelaySec` in `RestartSteps` exponential
/// steps (systemd's `service_restart_usec_next`).
pub fn restart_delay(unit: &AgentUnit, n: u32) -> Duration {
    let first = unit.restart_sec;
    let max = unit.restart_max_delay_sec.unwrap_or(first);
    if n <= 1 || unit.restart_steps == 0 || first <= 0.0 || first >= max {
        return Duration::from_secs_f64(first.max(0.0));
    }
    if n > unit.restart_steps {
        return Duration::from_secs_f64(max);
    }
    let ratio = max / first;
    Duration::from_secs_f64(first * ratio.powf(f64::from(n - 1) / f64::from(unit.restart_steps)))
}

/// A crashing agent binary: the active host's agent killed as soon as it
/// is up, again and again; the simulator restarts it as the agent's unit
/// does (`Restart=always`, its backoff; the library's unit data). The zone
/// never has two serving controllers nor one without the VIP, and ends
/// with a live agent on every service host and one controller serving.
pub(super) async fn agent_crash_loop(z: &Zone, c: &mut Ctx) -> Result<()> {
    let v = c.samples();
    c.expected = Outcome {
        summary: "a crash-looping gate agent on the active host: never two controllers \
                  serving, never one without the VIP; the agent's unit restarts it with backoff, \
                  never reaching a start limit; at the end a live agent on every service host \
                  and one controller serving on the VIP holder"
            .into(),
        vip: None,
        serving: None,
    };
    const CRASHES: u32 = 6;
    let (a, b, _) = roles(z);
    // systemd counts each unit's automatic restarts on its own host.
    let mut restarts = std::collections::BTreeMap::<String, u32>::new();
    for n in 1..=CRASHES {
        let Some(active) = v.serving().first().cloned() else {
            c.wait_for(
                &format!("crash {n}: a controller serves"),
                PROMOTION_TIMEOUT,
                || one_on_the_vip(&v),
            )
            .await;
            continue;
        };
        let unit = z.spec.host(&active).agent_unit();
        let count = restarts.entry(active.clone()).or_default();
        *count += 1;
        let delay = restart_delay(&unit, *count);
        c.fault(format!(
            "crash {n}: {active}'s gate agent killed (SIGKILL); restarted after {delay:?}"
        ));
        z.signal(&active, Kind::GateAgent, Signal::KILL)?;
        tokio::time::sleep(delay).await;
        z.start_agent(&active)?;
        c.event(format!("{active}'s gate agent started again"));
        // It crashes again once it is up, as a crashing binary would.
        let up = c
            .wait_for(
                &format!("crash {n}: {active}'s restarted agent answers"),
                Duration::from_secs(30),
                || agent_answers(z, &active),
            )
            .await;
        if !up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    c.fault_ended("the agent stops crashing");
    serves_again(c, &v, PROMOTION_TIMEOUT).await;
    for h in [&a, &b] {
        let alive = z.daemon(h, Kind::GateAgent).is_some();
        let answers = agent_answers(z, h).await;
        c.check(
            &format!("a live gate agent on {h} at the end"),
            alive && answers.is_some(),
            answers.unwrap_or_else(|| format!("process alive: {alive}; no /status")),
        );
    }
    let never: Vec<String> = v
        .since(Duration::ZERO)
        .iter()
        .filter_map(|s| {
            let vip = s.vip_holders();
            s.serving()
                .into_iter()
                .find(|h| !vip.contains(h))
                .map(|h| format!("{:.2} s: {h}", s.at.as_secs_f64()))
        })
        .collect();
    c.check(
        "no sample with a controller serving without the VIP",
        never.is_empty(),
        format!("{} samples {:?}", never.len(), &never[..never.len().min(5)]),
    );
    Ok(())
}

/// Moves `path` aside (`<path>.withheld`), as if it had never been installed.
fn withhold(path: &Path) -> Result<PathBuf> {
    let aside = path.with_extension("withheld");
    std::fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
    Ok(aside)
}

fn install(aside: &Path, path: &Path) -> Result<()> {
    std::fs::rename(aside, path).with_context(|| format!("installing {}", path.display()))
}

/// What `host`'s agent reports missing: from `/status` `credentials[]`,
/// the gate 5 reason, and the metric, each naming `path`.
async fn reports_missing(z: &Zone, host: &str, name: &str, path: &Path) -> Option<String> {
    let s = z.agent_status(host).await.ok()?;
    let path_text = path.display().to_string();
    let in_status = s
        .credentials
        .iter()
        .any(|c| c.name == name && c.path == path_text && !c.present);
    let in_gate = s
        .gate(GateId::Certificate)
        .is_some_and(|g| g.verdict == Verdict::Fail && g.reason.contains(&path_text));
    let metric = format!(
        "bsfg_controller_credential_present{{credential=\"{name}\",path=\"{path_text}\"}} 0"
    );
    let in_metrics = z
        .agent_metrics(host)
        .await
        .is_ok_and(|m| m.lines().any(|l| l == metric));
    (in_status && in_gate && in_metrics)
        .then(|| format!("{name} {path_text}: status, gate 5, metric"))
}

/// A service host deployed before its secrets: beta boots with its
/// controller certificate and the NATS system user's password file missing.
/// Its agent keeps running and names each missing path (status, CLI,
/// metric); when alpha dies beta refuses to promote; the certificate
/// appears (still refusing, naming the password file), then the password
/// file: beta promotes.
pub(super) async fn first_boot_without_secrets(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = Outcome {
        summary: "a host booted without its secrets reports exactly which credential path is \
                  missing (status, /status, metric), keeps evaluating, and promotes as soon as \
                  the files appear"
            .into(),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    let creds = z.credential_paths(&b);
    let cert = creds
        .get("tls_certificate")
        .cloned()
        .context("the zone library gives beta's agent no tls_certificate credential")?;
    let password = creds
        .get("nats_system_password")
        .cloned()
        .context("the zone library gives beta's agent no nats_system_password credential")?;
    c.event(format!(
        "{b} goes down to be redeployed without its secrets"
    ));
    crash(z, c, &[&b], format!("{b} down"))?;
    let cert_aside = withhold(&cert)?;
    let password_aside = withhold(&password)?;
    c.event(format!(
        "{b} boots without {} and {}",
        cert.display(),
        password.display()
    ));
    z.restore(&b)?;
    for (name, path) in [
        ("tls_certificate", &cert),
        ("nats_system_password", &password),
    ] {
        c.wait_for(
            &format!(
                "{b}'s agent reports {name} missing, naming {}",
                path.display()
            ),
            Duration::from_secs(60),
            || reports_missing(z, &b, name, path),
        )
        .await;
    }
    check_cli_mentions(z, c, &b, &password.display().to_string());
    c.target = Some(b.clone());
    crash(z, c, &[&a], format!("{a} crashes"))?;
    c.hold(
        &format!("{b} does not serve without its secrets"),
        Duration::from_secs(8),
        || async {
            match v.serving().contains(&b) {
                true => Err(format!("{b} serves")),
                false => Ok(()),
            }
        },
    )
    .await;
    let agent_alive = z.daemon(&b, Kind::GateAgent).is_some();
    c.check(
        &format!("{b}'s agent keeps running without its secrets (no crash loop)"),
        agent_alive,
        format!("agent process alive: {agent_alive}"),
    );
    c.event(format!("{} installed on {b}", cert.display()));
    install(&cert_aside, &cert)?;
    c.wait_for(
        &format!("{b} still refuses, naming only the password file"),
        Duration::from_secs(30),
        || async {
            let s = z.agent_status(&b).await.ok()?;
            let missing: Vec<&str> = s
                .credentials
                .iter()
                .filter(|c| !c.present)
                .map(|c| c.name.as_str())
                .collect();
            (missing == ["nats_system_password"] && !v.serving().contains(&b))
                .then(|| format!("missing {missing:?}"))
        },
    )
    .await;
    install(&password_aside, &password)?;
    c.fault_ended(format!("{} installed on {b}", password.display()));
    c.wait_for(
        &format!("{b} promotes once its secrets are there"),
        Duration::from_secs(90),
        || serves(&v, &b),
    )
    .await;
    c.wait_acks(
        &format!("appends acknowledged through {b}"),
        10,
        PROMOTION_TIMEOUT,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_follow_systemds_exponential_steps() {
        let unit = AgentUnit {
            restart_sec: 1.0,
            restart_steps: 3,
            restart_max_delay_sec: Some(8.0),
        };
        let d: Vec<f64> = (1..=6)
            .map(|n| (restart_delay(&unit, n).as_secs_f64() * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(d, vec![1.0, 2.0, 4.0, 8.0, 8.0, 8.0]);
        let fixed = AgentUnit {
            restart_sec: 1.0,
            restart_steps: 0,
            restart_max_delay_sec: None,
        };
        assert_eq!(restart_delay(&fixed, 9), Duration::from_secs(1));
    }
}
