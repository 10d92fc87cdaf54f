//! What systemd does for the gate agent (the systemd mode only): restart
//! it after a crash (Restart=always) and after it hangs (WatchdogSec=).
//! Either way the running controller is a unit of its own and survives the
//! agent; the new agent adopts it or stops it, and the zone never has two
//! controllers serving.

use super::{Ctx, PROMOTION_TIMEOUT, one_on_the_vip, roles};
use crate::drills::checker::SampleView;
use crate::processes::Kind;
use crate::zone::Zone;
use crate::zone::instance::unit_of;
use anyhow::{Context, Result};
use rustix::process::Signal;
use std::time::Duration;

/// `NRestarts` and `MainPID` of the agent's unit on `host`.
fn agent_unit(z: &Zone, host: &str) -> Result<(u32, Option<u32>)> {
    let unit = unit_of(Kind::GateAgent)?;
    let n = z
        .systemctl(host, &["show", "-p", "NRestarts", "--value", unit])?
        .trim()
        .parse()
        .context("NRestarts")?;
    Ok((n, z.main_pid(host, unit)?))
}

/// Where the VIP ends is a race the contract leaves open: keepalived's
/// check (`bsfg-gate-agent check`) fails while no agent runs, so alpha may
/// go FAULT and beta promote before the new agent is up; or the new agent
/// is up first and adopts the running controller. Either way exactly one
/// controller serves, on the only VIP holder (checked by the drill).
fn outcome(summary: &str) -> crate::drills::outcome::Outcome {
    crate::drills::outcome::Outcome {
        summary: summary.into(),
        vip: None,
        serving: None,
    }
}

/// After the agent on `a` is back: restarted by systemd (one more
/// restart, a new main pid), active again, and one controller serves on
/// the only VIP holder, taking appends.
async fn recovers(
    z: &Zone,
    c: &mut Ctx,
    v: &SampleView,
    a: &str,
    before: (u32, Option<u32>),
    within: Duration,
) {
    let name = format!("systemd restarted the gate agent on {a}");
    let deadline = std::time::Instant::now() + within;
    let restarted = loop {
        match agent_unit(z, a) {
            Ok((n, Some(pid))) if n > before.0 && Some(pid) != before.1 => {
                break Ok(format!("NRestarts {} → {n}, main pid {pid}", before.0));
            }
            Ok(now) if std::time::Instant::now() > deadline => {
                break Err(format!("unit still at {now:?}"));
            }
            Err(e) if std::time::Instant::now() > deadline => break Err(format!("{e:#}")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    c.check(&name, restarted.is_ok(), restarted.unwrap_or_else(|e| e));
    c.wait_for(
        "one controller serves, on the VIP holder",
        PROMOTION_TIMEOUT,
        || one_on_the_vip(v),
    )
    .await;
    c.wait_acks(
        "appends acknowledged after the agent's restart",
        10,
        PROMOTION_TIMEOUT,
    )
    .await;
    let unit = unit_of(Kind::GateAgent).unwrap_or_default();
    c.wait_for(
        &format!("the gate agent on {a} is active again (READY=1)"),
        PROMOTION_TIMEOUT,
        || async {
            let s = z
                .systemctl(a, &["show", "-p", "ActiveState", "--value", unit])
                .ok()?;
            (s.trim() == "active").then(|| "ActiveState=active".to_owned())
        },
    )
    .await;
}

pub(super) async fn agent_killed(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, _, _) = roles(z);
    let v = c.samples();
    c.expected = outcome(
        "the active host's agent crashes (not in section 8): systemd restarts it after RestartSec; \
         the controller unit outlives it; the new agent adopts it, or beta promotes if alpha's \
         keepalived check failed first: one controller serves, on the VIP holder",
    );
    let before = agent_unit(z, &a)?;
    c.fault(format!("the gate agent on {a} killed (SIGKILL)"));
    z.signal(&a, Kind::GateAgent, Signal::KILL)?;
    recovers(z, c, &v, &a, before, Duration::from_secs(20)).await;
    Ok(())
}

pub(super) async fn agent_stopped(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, _, _) = roles(z);
    let v = c.samples();
    c.expected = outcome(
        "the active host's agent hangs (SIGSTOP; not in section 8): it stops pinging the watchdog, \
         systemd kills it after WatchdogSec and restarts it; meanwhile and after, one controller \
         serves, on the VIP holder",
    );
    let before = agent_unit(z, &a)?;
    c.fault(format!(
        "the gate agent on {a} stopped (SIGSTOP): no more watchdog pings"
    ));
    z.signal(&a, Kind::GateAgent, Signal::STOP)?;
    // WatchdogSec (10 s) + RestartSec (1 s) + the new agent's start.
    recovers(z, c, &v, &a, before, Duration::from_secs(40)).await;
    Ok(())
}
