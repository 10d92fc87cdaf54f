//! The scripts of the drills. Each sets the expected outcome (contract
//! section 8), injects its fault(s) and records checks; the runner
//! ([`super::run`]) does the rest (load, checker, read-back, metrics).

use super::{Ctx, Drill, PROMOTION_TIMEOUT, contract, hosts};
use crate::drills::checker::SampleView;
use crate::load;
use crate::netns;
use crate::processes::{self, Kind};
use crate::zone::Zone;
use anyhow::{Context, Result};
use rustix::process::Signal;
use std::time::Duration;

pub(super) async fn run(drill: Drill, z: &Zone, c: &mut Ctx) -> Result<()> {
    match drill {
        Drill::BringUp => bring_up(z, c).await,
        Drill::Boot => boot(z, c).await,
        Drill::AlphaCrash => alpha_crash(z, c).await,
        Drill::BetaCrash => beta_crash(z, c).await,
        Drill::GammaCrash => gamma_crash(z, c).await,
        Drill::AlphaBetaCrash => alpha_beta_crash(z, c).await,
        Drill::AlphaIsolated => alpha_isolated(z, c).await,
        Drill::GammaIsolated => gamma_isolated(z, c).await,
        Drill::JetstreamKilled => jetstream_killed(z, c).await,
        Drill::KeepalivedKilled => keepalived_killed(z, c).await,
        Drill::ArtifactMountMissing => artifact_mount_missing(z, c).await,
        Drill::CertBelowThreshold => cert_below_threshold(z, c).await,
        Drill::Flapping => flapping(z, c).await,
        Drill::VrrpOneWay => vrrp_one_way(z, c).await,
        Drill::ReplicationAlphaCrash => super::replication::alpha_crash(z, c).await,
        Drill::OrphanedController => super::supervision::orphaned_controller(z, c).await,
        Drill::AgentCrashLoop => super::supervision::agent_crash_loop(z, c).await,
        Drill::FirstBootWithoutSecrets => {
            super::supervision::first_boot_without_secrets(z, c).await
        }
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
async fn one_on_the_vip(v: &SampleView) -> Option<String> {
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
        Ok(s) if s.role == "active" => Ok(()),
        Ok(s) => Err(format!("{active}'s agent is {}: {}", s.role, s.role_reason)),
        Err(e) => Err(format!("{active}'s agent: {e:#}")),
    }
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
pub(super) async fn stays_one_on_the_vip(v: &SampleView) -> Result<(), String> {
    one_on_the_vip(v)
        .await
        .map(|_| ())
        .ok_or_else(|| format!("serving {:?}, VIP {:?}", v.serving(), v.vip()))
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
    let demoted = s.role == "demoted" && (has(&s.role_reason) || has(&blocker));
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

pub(super) fn check_cli_mentions(z: &Zone, c: &mut Ctx, host: &str, needle: &str) {
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

// ------------------------------------------------------------------ drills

async fn bring_up(z: &Zone, c: &mut Ctx) -> Result<()> {
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
        bs.role == "standby" && z.controller_pids(&b).is_empty(),
        format!("role {}, controller {}", bs.role, bs.controller.process),
    );
    let names = z.process_names(&g);
    c.check(
        "gamma runs nats-server only (no agent, keepalived, controller)",
        names == ["nats-server"],
        format!("{names:?}"),
    );
    let g_artifacts = &z.spec.host(&g).paths.artifacts;
    c.check(
        "gamma has no artifact storage",
        !g_artifacts.exists(),
        g_artifacts.display().to_string(),
    );
    check_started_by_agent(z, c, &a);
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

async fn boot(z: &Zone, c: &mut Ctx) -> Result<()> {
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

async fn alpha_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "Alpha fails → VIP moves to Beta; Beta promotes if its gates pass; no acknowledged fact lost",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.target = Some(b.clone());
    crash(
        z,
        c,
        &[&a],
        format!("{a} crashes: cable pulled, every process killed"),
    )?;
    c.wait_for("beta holds the VIP and serves", PROMOTION_TIMEOUT, || {
        serves(&v, &b)
    })
    .await;
    c.wait_acks("appends acknowledged through beta", 20, PROMOTION_TIMEOUT)
        .await;
    Ok(())
}

async fn beta_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract("Beta fails → no role change"),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    crash(z, c, &[&b], format!("{b} crashes"))?;
    let hold = c.hold(
        "no role change while beta is down",
        Duration::from_secs(10),
        || unchanged(z, &v, &a, &b),
    );
    hold.await;
    c.wait_acks("appends keep succeeding", 20, PROMOTION_TIMEOUT)
        .await;
    c.event(format!("{b} boots again"));
    z.restore(&b)?;
    c.wait_for(
        "beta rejoins as standby (BACKUP)",
        PROMOTION_TIMEOUT,
        || async {
            let s = z.agent_status(&b).await.ok()?;
            (s.role == "standby" && s.vrrp.state == "BACKUP")
                .then(|| "beta BACKUP, standby".to_owned())
        },
    )
    .await;
    c.hold("still no role change", Duration::from_secs(3), || {
        unchanged(z, &v, &a, &b)
    })
    .await;
    Ok(())
}

async fn gamma_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, g) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract("Gamma fails → JetStream keeps quorum with 2 nodes; no role change"),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    crash(z, c, &[&g], format!("{g} crashes"))?;
    c.hold(
        "no role change while gamma is down",
        Duration::from_secs(10),
        || unchanged(z, &v, &a, &b),
    )
    .await;
    c.wait_acks(
        "appends keep succeeding on two voters",
        20,
        PROMOTION_TIMEOUT,
    )
    .await;
    c.event(format!("{g} boots again"));
    z.restore(&g)?;
    z.wait_formed(&[&g], PROMOTION_TIMEOUT).await?;
    c.check(
        "gamma rejoins the cluster",
        true,
        "3 voters, meta leader known",
    );
    c.wait_acks("appends after gamma is back", 10, PROMOTION_TIMEOUT)
        .await;
    c.hold("still no role change", Duration::from_secs(3), || {
        unchanged(z, &v, &a, &b)
    })
    .await;
    Ok(())
}

async fn alpha_beta_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    let loads = c.loads();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract("Alpha and Beta fail → zone unavailable; recovers when one returns"),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    crash(z, c, &[&a, &b], format!("{a} and {b} crash"))?;
    let down = c.elapsed();
    c.hold(
        "zone unavailable: no controller serves",
        Duration::from_secs(6),
        || {
            let v = v.clone();
            async move {
                let s = v.serving();
                if s.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{s:?} serve"))
                }
            }
        },
    )
    .await;
    let acked = loads.acked_after(down);
    c.check(
        "no append is acknowledged while both are down",
        acked == 0,
        format!("{acked} acknowledged"),
    );
    c.event(format!("{b} boots again"));
    z.restore(&b)?;
    c.wait_for(
        "beta serves once it is back (quorum with gamma)",
        Duration::from_secs(90),
        || serves(&v, &b),
    )
    .await;
    c.wait_acks("appends acknowledged again", 20, PROMOTION_TIMEOUT)
        .await;
    c.event(format!("{a} boots again"));
    z.restore(&a)?;
    z.wait_formed(&[&a], PROMOTION_TIMEOUT).await?;
    c.hold(
        "alpha rejoins as standby (no failback)",
        Duration::from_secs(5),
        || unchanged(z, &v, &b, &a),
    )
    .await;
    Ok(())
}

async fn alpha_isolated(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, g) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "Alpha isolated from Beta and Gamma → Alpha loses quorum and demotes; Beta promotes",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.target = Some(b.clone());
    c.fault(format!("{a} partitioned from {b} and {g} (link level)"));
    z.partition(&a, &[&b, &g])?;
    c.wait_for("beta holds the VIP and serves", PROMOTION_TIMEOUT, || {
        serves(&v, &b)
    })
    .await;
    c.wait_for(
        "alpha demotes: no controller, no VIP",
        PROMOTION_TIMEOUT,
        || async {
            (!v.serving().contains(&a) && !v.vip().contains(&a))
                .then(|| "alpha neither serves nor holds the VIP".to_owned())
        },
    )
    .await;
    c.wait_acks("appends acknowledged through beta", 20, PROMOTION_TIMEOUT)
        .await;
    c.event("the partition heals");
    z.heal_partition()?;
    z.wait_formed(&[&a], PROMOTION_TIMEOUT).await?;
    c.hold(
        "alpha stays standby after healing (no automatic failback)",
        Duration::from_secs(15),
        || unchanged(z, &v, &b, &a),
    )
    .await;
    c.wait_acks("appends after healing", 10, PROMOTION_TIMEOUT)
        .await;
    Ok(())
}

async fn gamma_isolated(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, g) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract("Gamma isolated → no change"),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    c.fault(format!("{g} partitioned from {a} and {b}"));
    z.partition(&g, &[&a, &b])?;
    c.hold(
        "no role change while gamma is isolated",
        Duration::from_secs(10),
        || unchanged(z, &v, &a, &b),
    )
    .await;
    c.wait_acks("appends keep succeeding", 20, PROMOTION_TIMEOUT)
        .await;
    c.event("the partition heals");
    z.heal_partition()?;
    z.wait_formed(&[&g], PROMOTION_TIMEOUT).await?;
    c.wait_acks("appends after healing", 10, PROMOTION_TIMEOUT)
        .await;
    Ok(())
}

async fn jetstream_killed(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "local JetStream lost on the active host (a gate) → it demotes; Beta promotes",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.target = Some(b.clone());
    c.fault(format!("nats-server on {a} killed (SIGKILL)"));
    z.signal(&a, Kind::Nats, Signal::KILL)?;
    c.wait_for("beta holds the VIP and serves", PROMOTION_TIMEOUT, || {
        serves(&v, &b)
    })
    .await;
    c.wait_for(
        "alpha demotes: no controller, no VIP",
        PROMOTION_TIMEOUT,
        || async {
            (!v.serving().contains(&a) && !v.vip().contains(&a))
                .then(|| "alpha neither serves nor holds the VIP".to_owned())
        },
    )
    .await;
    c.wait_acks("appends acknowledged through beta", 20, PROMOTION_TIMEOUT)
        .await;
    c.event(format!("nats-server on {a} restarted"));
    z.start_nats(&a)?;
    z.wait_formed(&[&a], PROMOTION_TIMEOUT).await?;
    c.hold(
        "alpha stays standby (no failback)",
        Duration::from_secs(12),
        || unchanged(z, &v, &b, &a),
    )
    .await;
    Ok(())
}

async fn keepalived_killed(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary:
            "keepalived crash on the active host (not in section 8): the VIP stays configured \
                  there but is stale; the agent stops its controller (gate 1 needs a running \
                  keepalived), which releases the lease; beta takes the VIP and serves; keepalived \
                  back on alpha (systemd restarts it) finds beta master: no failback"
                .into(),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.fault(format!(
        "every keepalived process on {a} killed at once (SIGKILL): its VIP stays configured"
    ));
    let killed = z.kill_all_named(&a, "keepalived");
    c.event(format!("{killed} keepalived processes killed"));
    c.wait_for(
        "beta takes the VIP too (alpha's adverts stopped)",
        Duration::from_secs(30),
        || async {
            v.vip()
                .contains(&b)
                .then(|| format!("VIP on {:?}", v.vip()))
        },
    )
    .await;
    c.wait_for(
        "alpha's agent stepped down on the stale VIP and beta serves",
        PROMOTION_TIMEOUT,
        || async {
            let serving = v.serving();
            (serving.len() == 1 && serving.contains(&b)).then(|| format!("serving on {serving:?}"))
        },
    )
    .await;
    c.wait_acks("appends acknowledged through beta", 10, PROMOTION_TIMEOUT)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.event(format!(
        "keepalived on {a} restarted (as systemd's Restart= does)"
    ));
    z.start_keepalived(&a)?;
    c.wait_for("one VIP holder again", Duration::from_secs(30), || async {
        (v.vip().len() == 1).then(|| format!("VIP on {:?}", v.vip()))
    })
    .await;
    c.wait_for(
        "one controller serves, on the VIP holder",
        PROMOTION_TIMEOUT,
        || one_on_the_vip(&v),
    )
    .await;
    c.wait_acks("appends acknowledged again", 10, PROMOTION_TIMEOUT)
        .await;
    Ok(())
}

async fn artifact_mount_missing(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "artifact storage missing on the promoting host → promotion denied (then granted once it is back)",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.event(format!("{b}'s artifact storage disappears"));
    z.remove_artifacts(&b)?;
    refused_while_gate_fails(z, c, &v, (&a, &b), "artifacts", "artifact").await?;
    c.event(format!("{b}'s artifact storage is back"));
    z.restore_artifacts(&b)?;
    promotes_once_fixed(c, &v, &b, "beta promotes once the storage is back").await;
    Ok(())
}

async fn cert_below_threshold(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "certificate below threshold → promotion denied (policy deny), then granted with a valid one",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.event(format!("{b}'s controller certificate replaced by one valid 10 days (policy: 30 days), agent restarted"));
    z.install_short_certificate(&b)?;
    z.restart_agent(&b).await?;
    refused_while_gate_fails(z, c, &v, (&a, &b), "certificate", "certificate").await?;
    c.event(format!("a valid certificate on {b}, agent restarted"));
    z.install_valid_certificate(&b)?;
    z.restart_agent(&b).await?;
    promotes_once_fixed(c, &v, &b, "beta promotes with a valid certificate").await;
    Ok(())
}

/// The middle of the gate drills: `gate` already fails on the standby host;
/// the active host crashes; the standby refuses to promote, names the reason
/// (`needle`) in its status and CLI, and keeps refusing for 8 s.
async fn refused_while_gate_fails(
    z: &Zone,
    c: &mut Ctx,
    v: &SampleView,
    (active, standby): (&str, &str),
    gate: &str,
    needle: &str,
) -> Result<()> {
    c.wait_for(
        &format!("{standby}'s agent sees the {gate} gate fail while standby"),
        Duration::from_secs(30),
        || async {
            let s = z.agent_status(standby).await.ok()?;
            s.gates
                .iter()
                .find(|g| g.gate == gate && g.verdict == "fail")
                .map(|g| g.reason.clone())
        },
    )
    .await;
    crash(z, c, &[active], format!("{active} crashes"))?;
    c.wait_for(
        &format!("promotion denied, the {needle} reason in {standby}'s agent status"),
        PROMOTION_TIMEOUT,
        || refuses(z, v, standby, needle),
    )
    .await;
    check_cli_mentions(z, c, standby, needle);
    c.hold(
        &format!("{standby} does not serve while the {gate} gate fails"),
        Duration::from_secs(8),
        || not_serving(v, standby),
    )
    .await;
    Ok(())
}

/// The end of the gate drills: the standby promotes and appends flow through it.
async fn promotes_once_fixed(c: &mut Ctx, v: &SampleView, host: &str, what: &str) {
    c.wait_for(what, Duration::from_secs(90), || serves(v, host))
        .await;
    c.wait_acks(
        &format!("appends acknowledged through {host}"),
        10,
        PROMOTION_TIMEOUT,
    )
    .await;
}

async fn flapping(z: &Zone, c: &mut Ctx) -> Result<()> {
    let v = c.samples();
    c.expected.summary = "a flapping link on the active host: one controller at a time, no ping-pong \
                          (hold-down, nopreempt), no acknowledged fact lost; ends with one controller on the VIP holder"
        .into();
    for round in 0..4 {
        let active = c
            .wait_for(
                &format!("round {}: a host serves", round + 1),
                Duration::from_secs(90),
                || one_on_the_vip(&v),
            )
            .await;
        if !active {
            break;
        }
        let host = v.serving().first().cloned().context("a serving host")?;
        c.fault(format!(
            "round {}: {host}'s cable pulled for 1.5 s",
            round + 1
        ));
        z.set_cable(&host, false)?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        z.set_cable(&host, true)?;
        c.event(format!("{host}'s cable back"));
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    c.wait_for(
        "one controller serves, on the VIP holder",
        Duration::from_secs(90),
        || one_on_the_vip(&v),
    )
    .await;
    c.hold(
        "stable: one controller on the only VIP holder",
        Duration::from_secs(5),
        || stays_one_on_the_vip(&v),
    )
    .await;
    c.wait_acks("appends acknowledged at the end", 10, PROMOTION_TIMEOUT)
        .await;
    Ok(())
}

async fn vrrp_one_way(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "one-way VRRP loss (both hold the VIP) → at most one controller serves: the lease holder; \
             the other refuses to promote and says why",
        ),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    c.fault(format!(
        "{b} stops hearing {a}'s VRRP adverts (nftables in {b}'s namespace)"
    ));
    z.drop_vrrp(&b, &a)?;
    c.wait_for("both hold the VIP", Duration::from_secs(30), || async {
        let vip = v.vip();
        (vip.contains(&a) && vip.contains(&b)).then(|| format!("VIP on {vip:?}"))
    })
    .await;
    let needle = format!("lease held by {a}");
    c.wait_for(
        &format!("beta refuses: \"{needle}\" in its agent status"),
        Duration::from_secs(30),
        || refuses(z, &v, &b, &needle),
    )
    .await;
    check_cli_mentions(z, c, &b, &needle);
    c.hold(
        "only the lease holder (alpha) may serve while both hold the VIP",
        Duration::from_secs(10),
        || not_serving(&v, &b),
    )
    .await;
    c.event("adverts flow again");
    z.heal_vrrp(&b)?;
    c.wait_for(
        "beta gives the VIP back",
        Duration::from_secs(30),
        || async { (v.vip() == [a.clone()]).then(|| "VIP on alpha only".to_owned()) },
    )
    .await;
    c.wait_acks(
        "appends acknowledged after healing",
        10,
        Duration::from_secs(90),
    )
    .await;
    Ok(())
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
