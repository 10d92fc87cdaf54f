//! A rolling restart in the planned order of `bsfgctl upgrade plan`
//! (gamma, the standby, a planned handover, the old active), as an operator
//! rolls a zone: each step waits for what the plan says must hold before
//! the next. Drills that roll something out (new certificates, new
//! binaries) pass what to do to a host just before its restart.

use super::{Ctx, PROMOTION_TIMEOUT, takes_over};
use crate::zone::Zone;
use anyhow::{Result, ensure};
use bsfg_mgmt::{Role, VrrpState};

/// Who was active and standby before the roll; after it, `standby` is
/// active and `active` is standby.
#[derive(Debug, Clone)]
pub(crate) struct Rolled {
    pub active: String,
    pub standby: String,
}

/// Rolls the zone: before each host's restart, `prepare(host)` installs what
/// the roll delivers to it. The active host is the only VIP holder.
pub(crate) async fn rolling_restart_in_planned_order(
    z: &Zone,
    c: &mut Ctx,
    prepare: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Rolled> {
    let holders = z.vip_holders().await?;
    ensure!(
        holders.len() == 1,
        "a rolling restart needs exactly one VIP holder, not {holders:?}"
    );
    let [a, b, gamma] = z.spec.host_names().map(str::to_owned);
    let active = holders[0].clone();
    let standby = if active == a { b } else { a };
    let v = c.samples();

    c.event(format!("roll 1/4: {gamma} restarts"));
    prepare(&gamma)?;
    z.restart_host(&gamma).await?;
    rejoined(z, c, &gamma).await;

    c.event(format!("roll 2/4: {standby} (standby) restarts"));
    prepare(&standby)?;
    z.restart_host(&standby).await?;
    rejoined(z, c, &standby).await;
    ready_standby(z, c, &standby).await;

    c.event(format!("roll 3/4: planned handover from {active}"));
    z.restart_agent(&active).await?;
    takes_over(c, &v, &active, &standby).await;
    ready_standby(z, c, &active).await;

    c.event(format!("roll 4/4: {active} (old active) restarts"));
    prepare(&active)?;
    z.restart_host(&active).await?;
    rejoined(z, c, &active).await;
    ready_standby(z, c, &active).await;
    Ok(Rolled { active, standby })
}

/// `host` is back in the JetStream cluster: every host sees three voters
/// and a meta leader, and the leader counts both other servers current.
async fn rejoined(z: &Zone, c: &mut Ctx, host: &str) {
    c.wait_for(
        &format!("{host} rejoined: three voters, every peer current"),
        PROMOTION_TIMEOUT,
        || async {
            let mut leader_view = None;
            for h in z.spec.host_names() {
                let p = z.placement(h).await.ok()?;
                if !p.formed(3) {
                    return None;
                }
                if p.meta_leader.as_deref() == Some(p.server.as_str()) {
                    leader_view = Some(p);
                }
            }
            let p = leader_view?;
            (p.current_peers.len() == 2).then(|| {
                format!(
                    "meta leader {} counts {} current",
                    p.server,
                    p.current_peers.join(", ")
                )
            })
        },
    )
    .await;
}

/// `host`'s agent is standby and its keepalived BACKUP.
async fn ready_standby(z: &Zone, c: &mut Ctx, host: &str) {
    c.wait_for(
        &format!("{host} is standby (VRRP BACKUP)"),
        PROMOTION_TIMEOUT,
        || async {
            let s = z.agent_status(host).await.ok()?;
            (s.role == Role::Standby && s.vrrp.state == VrrpState::Backup)
                .then(|| format!("{host} standby, VRRP BACKUP"))
        },
    )
    .await;
}
