//! A promotion gate lost: JetStream or keepalived killed on the active
//! host, the standby's artifact storage or certificate unfit when it must
//! take over.

use super::takes_over;
use super::{Ctx, PROMOTION_TIMEOUT, contract, hosts};
use super::{
    check_cli_mentions, crash, not_serving, one_on_the_vip, refuses, roles, serves, unchanged,
};
use crate::drills::checker::SampleView;
use crate::processes::Kind;
use crate::zone::Zone;
use anyhow::Result;
use bsfg_mgmt::{GateId, Verdict};
use rustix::process::Signal;
use std::time::Duration;

pub(super) async fn jetstream_killed(z: &Zone, c: &mut Ctx) -> Result<()> {
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
    takes_over(c, &v, &a, &b).await;
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

pub(super) async fn keepalived_killed(z: &Zone, c: &mut Ctx) -> Result<()> {
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

pub(super) async fn artifact_mount_missing(z: &Zone, c: &mut Ctx) -> Result<()> {
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
    refused_while_gate_fails(z, c, &v, (&a, &b), GateId::Artifacts, "artifact").await?;
    c.event(format!("{b}'s artifact storage is back"));
    z.restore_artifacts(&b)?;
    promotes_once_fixed(c, &v, &b, "beta promotes once the storage is back").await;
    Ok(())
}

pub(super) async fn cert_below_threshold(z: &Zone, c: &mut Ctx) -> Result<()> {
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
    refused_while_gate_fails(z, c, &v, (&a, &b), GateId::Certificate, "certificate").await?;
    c.event(format!("a valid certificate on {b}, agent restarted"));
    let short = file_identity(&z.certificate_file(&b)?)?;
    z.install_valid_certificate(&b)?;
    z.restart_agent(&b).await?;
    promotes_once_fixed(c, &v, &b, "beta promotes with a valid certificate").await;
    if z.init() == crate::container::Init::Systemd {
        loads_the_reissued_certificate(z, c, &b, short)?;
    }
    Ok(())
}

/// (inode, contents) of a file.
fn file_identity(path: &std::path::Path) -> Result<(u64, String)> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path)?.ino();
    Ok((ino, std::fs::read_to_string(path)?))
}

/// The valid certificate replaced the short one by a rename on this
/// machine (a new inode, as bsfg-pki and an operator's `mv` write it), and
/// the controller unit `host`'s agent started since loaded the new one:
/// the container binds the credential directory, not the old file.
fn loads_the_reissued_certificate(
    z: &Zone,
    c: &mut Ctx,
    host: &str,
    (short_ino, short_pem): (u64, String),
) -> Result<()> {
    let (ino, pem) = file_identity(&z.certificate_file(host)?)?;
    c.check(
        &format!("{host}'s valid certificate replaced the short one by a rename"),
        ino != short_ino && pem != short_pem,
        format!("inode {short_ino} -> {ino}"),
    );
    let unit = crate::zone::instance::unit_of(Kind::Controller)?;
    let loaded = z.loaded_credential(host, unit, "cert.pem");
    c.check(
        &format!("{unit} on {host} loaded the reissued certificate (LoadCredential=)"),
        loaded.as_deref().is_ok_and(|l| l == pem),
        match &loaded {
            Ok(l) if *l == short_pem => "the short certificate".to_owned(),
            Ok(l) if *l == pem => "/run/credentials/.../cert.pem is the new file".to_owned(),
            Ok(_) => "another certificate".to_owned(),
            Err(e) => format!("{e:#}"),
        },
    );
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
    gate: GateId,
    needle: &str,
) -> Result<()> {
    c.wait_for(
        &format!("{standby}'s agent sees the {gate} gate fail while standby"),
        Duration::from_secs(30),
        || async {
            let s = z.agent_status(standby).await.ok()?;
            s.gates
                .iter()
                .find(|g| g.gate == gate && g.verdict == Verdict::Fail)
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
    if z.init() == crate::container::Init::Systemd {
        // What an operator sees first: `systemctl status` shows the agent's
        // STATUS= line (the unit's StatusText), which names the failing
        // gates by their contract names.
        let unit = crate::zone::instance::unit_of(crate::processes::Kind::GateAgent)?;
        let text = z
            .systemctl(standby, &["show", "-p", "StatusText", "--value", unit])
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|e| format!("{e:#}"));
        let failing = bsfg_mgmt::agent::failing_gates_of_unit_status(&text);
        c.check(
            &format!("`systemctl status {unit}` on {standby} names the {gate} gate failing"),
            failing.as_ref().is_some_and(|f| f.contains(&gate)),
            format!("Status: {text:?}"),
        );
    }
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
