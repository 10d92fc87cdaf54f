//! The network failing: a host partitioned off, a flapping cable, VRRP
//! adverts lost one way.

use super::{Ctx, PROMOTION_TIMEOUT, contract, hosts};
use super::{check_cli_mentions, not_serving, one_on_the_vip, refuses, roles, unchanged};
use super::{serves_again, takes_over};
use crate::zone::Zone;
use anyhow::{Context, Result};
use std::time::Duration;

pub(super) async fn alpha_isolated(z: &Zone, c: &mut Ctx) -> Result<()> {
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
    takes_over(c, &v, &a, &b).await;
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

pub(super) async fn gamma_isolated(z: &Zone, c: &mut Ctx) -> Result<()> {
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

pub(super) async fn flapping(z: &Zone, c: &mut Ctx) -> Result<()> {
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
    serves_again(c, &v, Duration::from_secs(90)).await;
    Ok(())
}

pub(super) async fn vrrp_one_way(z: &Zone, c: &mut Ctx) -> Result<()> {
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
