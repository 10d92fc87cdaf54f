//! The scripts of the drills. Each sets the expected outcome (contract
//! section 8), injects its fault(s) and records checks; the runner
//! ([`super::run`]) does the rest (load, checker, read-back, metrics).

mod bring_up;
mod ca_rollover;
mod cert_rotation;
mod crashes;
mod gates;
mod partitions;
mod pki_rollout;
pub(crate) mod rolling;
mod supervision;
mod systemd_supervision;

use super::ctx::{contract, hosts};
use super::{Ctx, Drill, PROMOTION_TIMEOUT};
use crate::drills::checker::SampleView;
use crate::load;
use crate::netns;
use crate::processes::{self, Kind};
use crate::zone::Zone;
use anyhow::Result;
use bsfg_mgmt::Role;
use std::time::Duration;

pub(super) async fn run(drill: Drill, z: &Zone, c: &mut Ctx) -> Result<()> {
    match drill {
        Drill::BringUp => bring_up::bring_up(z, c).await,
        Drill::Boot => bring_up::boot(z, c).await,
        Drill::AlphaCrash => crashes::alpha_crash(z, c).await,
        Drill::BetaCrash => crashes::beta_crash(z, c).await,
        Drill::GammaCrash => crashes::gamma_crash(z, c).await,
        Drill::AlphaBetaCrash => crashes::alpha_beta_crash(z, c).await,
        Drill::AlphaIsolated => partitions::alpha_isolated(z, c).await,
        Drill::GammaIsolated => partitions::gamma_isolated(z, c).await,
        Drill::JetstreamKilled => gates::jetstream_killed(z, c).await,
        Drill::KeepalivedKilled => gates::keepalived_killed(z, c).await,
        Drill::ArtifactMountMissing => gates::artifact_mount_missing(z, c).await,
        Drill::CertBelowThreshold => gates::cert_below_threshold(z, c).await,
        Drill::Flapping => partitions::flapping(z, c).await,
        Drill::VrrpOneWay => partitions::vrrp_one_way(z, c).await,
        Drill::ReplicationAlphaCrash => super::replication::alpha_crash(z, c).await,
        Drill::PowerLossAll => super::power::power_loss_all(z, c).await,
        Drill::PowerLossOne => super::power::power_loss_one(z, c).await,
        Drill::AgentKilled => systemd_supervision::agent_killed(z, c).await,
        Drill::AgentStopped => systemd_supervision::agent_stopped(z, c).await,
        Drill::OrphanedController => supervision::orphaned_controller(z, c).await,
        Drill::AgentCrashLoop => supervision::agent_crash_loop(z, c).await,
        Drill::FirstBootWithoutSecrets => supervision::first_boot_without_secrets(z, c).await,
        Drill::ZoneRestore => super::restore::zone_restore(z, c).await,
        Drill::RollingUpgrade => super::upgrade::rolling_upgrade(z, c).await,
        Drill::CertRotation => cert_rotation::cert_rotation(z, c).await,
        Drill::CaRollover => ca_rollover::ca_rollover(z, c).await,
    }
}

/// Crashes `hosts`, marking the fault the moment their cables are out
/// (before the kill: from then on nothing they do reaches anyone).
pub(super) fn crash(z: &Zone, c: &mut Ctx, hosts: &[&str], what: String) -> Result<()> {
    for h in hosts {
        z.set_cable(h, false)?;
    }
    c.fault(what);
    for h in hosts {
        z.crash(h)?;
    }
    Ok(())
}

pub(super) fn roles(z: &Zone) -> (String, String, String) {
    let [a, b, g] = z.spec.host_names().map(str::to_owned);
    (a, b, g)
}

/// `host` holds the VIP and serves, in the latest sample.
pub(super) async fn serves(v: &SampleView, host: &str) -> Option<String> {
    v.serving_on(host)
        .then(|| format!("{host} holds the VIP and its controller serves"))
}

/// Exactly one controller serves, on the only VIP holder.
pub(super) async fn one_on_the_vip(v: &SampleView) -> Option<String> {
    let (serving, vip) = (v.serving(), v.vip());
    (serving.len() == 1 && vip == serving)
        .then(|| format!("{} serves and alone holds the VIP", serving[0]))
}

/// The zone as before the fault: `active` serves and alone holds the VIP,
/// its agent is active, `standby` serves nothing.
async fn unchanged(z: &Zone, v: &SampleView, active: &str, standby: &str) -> Result<(), String> {
    let (serving, vip) = (v.serving(), v.vip());
    if serving.iter().any(|h| h == standby) {
        return Err(format!("{standby} serves"));
    }
    if vip != [active] {
        return Err(format!("the VIP is on {vip:?}, not only on {active}"));
    }
    match z.agent_status(active).await {
        Ok(s) if s.role == Role::Active => Ok(()),
        Ok(s) => Err(format!("{active}'s agent is {}: {}", s.role, s.role_reason)),
        Err(e) => Err(format!("{active}'s agent: {e:#}")),
    }
}

/// `host`'s keepalived has reported a state to its agent: after a boot
/// it starts only after the library's `bootDelaySeconds`, and a hold that
/// ends before then would prove nothing about how it joins.
pub(super) async fn keepalived_reports(z: &Zone, host: &str) -> Option<String> {
    let s = z.agent_status(host).await.ok()?;
    (s.vrrp.state != bsfg_mgmt::VrrpState::Unknown)
        .then(|| format!("{host}'s keepalived reports {:?}", s.vrrp.state))
}

/// For `hold`: `host` alone serves and alone holds the VIP.
pub(super) async fn only_on(v: &SampleView, host: &str) -> Result<(), String> {
    match (v.serving(), v.vip()) {
        (s, vip) if s == [host] && vip == [host] => Ok(()),
        (s, vip) => Err(format!("serving on {s:?}, VIP on {vip:?}")),
    }
}

/// For `hold`: `host`'s controller does not serve.
async fn not_serving(v: &SampleView, host: &str) -> Result<(), String> {
    let s = v.serving();
    if s.iter().any(|h| h == host) {
        Err(format!("{host} serves: {s:?}"))
    } else {
        Ok(())
    }
}

/// For `hold`: exactly one controller serves, on the only VIP holder.
async fn stays_one_on_the_vip(v: &SampleView) -> Result<(), String> {
    one_on_the_vip(v)
        .await
        .map(|_| ())
        .ok_or_else(|| format!("serving {:?}, VIP {:?}", v.serving(), v.vip()))
}

/// The end of a drill whose fault has ended: within `timeout` one controller
/// serves on the only VIP holder, stays so for 5 s, and appends are
/// acknowledged.
async fn serves_again(c: &mut Ctx, v: &SampleView, timeout: Duration) {
    c.wait_for("one controller serves, on the VIP holder", timeout, || {
        one_on_the_vip(v)
    })
    .await;
    c.hold(
        "stable: one controller on the only VIP holder",
        Duration::from_secs(5),
        || stays_one_on_the_vip(v),
    )
    .await;
    c.wait_acks("appends acknowledged at the end", 10, PROMOTION_TIMEOUT)
        .await;
}

/// `to` holds the VIP and serves, `from` (still alive) demoted: neither
/// serves nor holds the VIP; appends are acknowledged through `to`.
async fn takes_over(c: &mut Ctx, v: &SampleView, from: &str, to: &str) {
    c.wait_for(
        &format!("{to} holds the VIP and serves"),
        PROMOTION_TIMEOUT,
        || serves(v, to),
    )
    .await;
    c.wait_for(
        &format!("{from} demotes: no controller, no VIP"),
        PROMOTION_TIMEOUT,
        || async {
            (!v.serving().iter().any(|h| h == from) && !v.vip().iter().any(|h| h == from))
                .then(|| format!("{from} neither serves nor holds the VIP"))
        },
    )
    .await;
    c.wait_acks(
        &format!("appends acknowledged through {to}"),
        20,
        PROMOTION_TIMEOUT,
    )
    .await;
}

/// Promotion denied on `host`, with `needle` in the reason: either it holds
/// the VIP and its agent refuses to start the controller (the blocker says
/// why), or the agent demoted it (gave the VIP away) for that reason.
async fn refuses(z: &Zone, v: &SampleView, host: &str, needle: &str) -> Option<String> {
    if v.serving().iter().any(|h| h == host) {
        return None;
    }
    let s = z.agent_status(host).await.ok()?;
    let has = |t: &str| t.to_lowercase().contains(&needle.to_lowercase());
    let blocker = s.blocker.clone().unwrap_or_default();
    let refused_with_vip = v.vip().iter().any(|h| h == host) && has(&blocker);
    let demoted = s.role == Role::Demoted && (has(&s.role_reason) || has(&blocker));
    (refused_with_vip || demoted).then(|| {
        format!(
            "{host} is {} (VRRP {}): {}{}",
            s.role,
            s.vrrp.state,
            s.role_reason,
            if blocker.is_empty() {
                String::new()
            } else {
                format!("; {blocker}")
            }
        )
    })
}

/// `bsfg-gate-agent status` (the CLI, as an operator runs it on the host).
fn agent_cli_status(z: &Zone, host: &str) -> Result<String> {
    let cfg = z.spec.host(host).paths.agent_config.display().to_string();
    let agent = z.tools().gate_agent.display().to_string();
    netns::exec_in(&z.ns(host), &agent, &["--config", &cfg, "status"], None)
}

fn check_cli_mentions(z: &Zone, c: &mut Ctx, host: &str, needle: &str) {
    let name = format!("`bsfg-gate-agent status` on {host} names the reason ({needle})");
    match agent_cli_status(z, host) {
        Ok(out) => {
            let found = out.to_lowercase().contains(&needle.to_lowercase());
            let line = out
                .lines()
                .find(|l| l.to_lowercase().contains(&needle.to_lowercase()))
                .unwrap_or("")
                .trim()
                .to_owned();
            c.check(&name, found, if found { line } else { out });
        }
        Err(e) => {
            c.check(&name, false, format!("{e:#}"));
        }
    }
}

/// The controller processes on `host` are children of its gate agent and
/// younger than it: nothing but the agent started them.
fn check_started_by_agent(z: &Zone, c: &mut Ctx, host: &str) {
    if z.init() == crate::container::Init::Systemd {
        let name = format!(
            "the controller on {host} runs under systemd as its own user, started after the agent, wanted by nothing"
        );
        let r = z.controller_started_through_systemd(host);
        c.check(&name, r.is_ok(), r.unwrap_or_else(|e| format!("{e:#}")));
        return;
    }
    let name = format!("the controller on {host} was started by its gate agent");
    let Some(agent) = z.daemon(host, Kind::GateAgent) else {
        c.check(&name, false, "no gate agent runs");
        return;
    };
    let pids = z.controller_pids(host);
    if pids.is_empty() {
        c.check(&name, false, "no controller process");
        return;
    }
    for pid in pids {
        let parent = processes::parent_pid(pid);
        let younger = processes::start_time(pid).is_some_and(|t| t >= agent.start_time);
        if parent != Some(agent.pid) || !younger {
            c.check(
                &name,
                false,
                format!("controller {pid}: parent {parent:?}, agent {}", agent.pid),
            );
            return;
        }
    }
    c.check(
        &name,
        true,
        format!("parent is the agent (pid {})", agent.pid),
    );
}

async fn append_extra(z: &Zone, c: &mut Ctx, id: &str, expect_duplicate: bool) -> Result<()> {
    let (producer, _) = z.client_tls();
    let endpoint = z.spec.endpoint();
    let req = load::fact_request(&z.workload, "bring-up", id, 0, 1_780_000_000_000);
    let resp = z
        .in_ns(netns::CLIENT, move || async move {
            load::append_one(&endpoint, &producer, req, Duration::from_secs(30)).await
        })
        .await??;
    c.extra_acked.push(id.to_owned());
    if resp.duplicate != expect_duplicate {
        c.check(
            "a repeated message_id is recognised, not stored again",
            false,
            format!(
                "{id}: duplicate = {} on attempt expecting {expect_duplicate}",
                resp.duplicate
            ),
        );
    }
    Ok(())
}

/// Local addresses listening on TCP `port` in `host`'s namespace (`ss`).
fn listeners(z: &Zone, host: &str, port: u16) -> Result<Vec<String>> {
    let out = netns::exec_in(
        &z.ns(host),
        "ss",
        &["-Htln", &format!("sport = :{port}")],
        None,
    )?;
    Ok(local_addresses(&out))
}

/// The local-address column of `ss -Htln` (state, recv-q, send-q, local, peer).
pub fn local_addresses(ss: &str) -> Vec<String> {
    ss.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_column_of_ss() {
        let out = "LISTEN 0      4096   127.0.0.1:4222 0.0.0.0:*\nLISTEN 0 1024 10.20.0.100:9443 0.0.0.0:*\n";
        assert_eq!(
            local_addresses(out),
            vec!["127.0.0.1:4222", "10.20.0.100:9443"]
        );
        assert!(local_addresses("").is_empty());
    }
}
