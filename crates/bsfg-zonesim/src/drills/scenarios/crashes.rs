//! Hosts dying: alpha, beta, gamma, alpha and beta together.

use super::{Ctx, PROMOTION_TIMEOUT, contract, hosts};
use super::{crash, keepalived_reports, roles, serves, unchanged};
use crate::zone::Zone;
use anyhow::Result;
use bsfg_mgmt::{Role, VrrpState};
use std::time::Duration;

pub(super) async fn alpha_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
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

pub(super) async fn beta_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
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
            (s.role == Role::Standby && s.vrrp.state == VrrpState::Backup)
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

pub(super) async fn gamma_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
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

pub(super) async fn alpha_beta_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
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
    c.wait_for("alpha's keepalived runs again", PROMOTION_TIMEOUT, || {
        keepalived_reports(z, &a)
    })
    .await;
    c.hold(
        "alpha rejoins as standby (no failback)",
        Duration::from_secs(5),
        || unchanged(z, &v, &b, &a),
    )
    .await;
    Ok(())
}
