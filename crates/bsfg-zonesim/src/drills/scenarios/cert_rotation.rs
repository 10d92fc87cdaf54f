//! Certificate rotation by rolling restart. Under load, `bsfgctl pki renew`
//! (the zone's CA directory, exported from the simulator's CA) re-issues
//! every certificate of the zone's plan while the old ones stay valid (the
//! overlap); each host receives its new files just before its restart in
//! the planned order ([`super::rolling`]); a planned handover back puts
//! the zone where it was. The certificate each daemon serves is read over
//! a real TLS connection before and after.

use super::pki_rollout::{
    CaDirectory, check_append, client_files, install_client, install_staged, peek_controller,
    served,
};
use super::rolling::rolling_restart_in_planned_order;
use super::{Ctx, PROMOTION_TIMEOUT, contract, hosts, roles, serves_again, takes_over};
use crate::zone::Zone;
use anyhow::{Context, Result};

/// Renewed now although valid for a year: the drill rotates what it has.
const RENEW_WITHIN: &str = "400d";

pub(super) async fn cert_rotation(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "Certificate rotation: renewed with overlap, rolled out host by host in the planned order; no acknowledged fact lost, one controller at a time",
        ),
        vip: hosts(&[&a]),
        serving: hosts(&[&a]),
    };
    c.target = Some(b.clone());
    let creds = z
        .credentials()
        .context("no CA in this process (certificates are made by `up`)")?;
    let work = z.run_dir.join("pki-rotation");
    let pki = CaDirectory::export(z, &work)?;
    let ca_dir = pki.dir.clone();

    let before = served(z).await?;
    for l in &before {
        c.check(
            &format!("before: {} serves its installed certificate", l.what),
            l.served.is(&l.installed),
            l.served.to_string(),
        );
    }

    let out = pki.pki_json(&["renew"], &["--within", RENEW_WITHIN])?;
    let renewed = out
        .as_array()
        .context("pki renew --json: not an array")?
        .iter()
        .filter(|r| r["action"] == "issued")
        .count();
    let planned = z.spec.pki.certificates.len();
    c.check(
        "bsfgctl pki renew re-issued every certificate of the plan",
        renewed == planned,
        format!("{renewed} of {planned} issued"),
    );
    let check = pki.pki(&["check"], &[], true);
    c.check(
        "bsfgctl pki check passes on the renewed CA directory",
        check.is_ok(),
        check.map_or_else(|e| format!("{e:#}"), |_| "exit 0".into()),
    );

    // Clients are not the zone's hosts: their renewed files go to the
    // clients (here a directory of their own); the old ones stay valid.
    let new_producer = work.join("new-client");
    let producer_cn = z.workload.producer.clone();
    install_client(z, &ca_dir, &producer_cn, &new_producer)?;

    c.fault("certificates renewed; rolling restart in the planned order");
    let staging = pki.staging();
    let spec = z.spec.clone();
    let mut install = |host: &str| install_staged(&spec, &staging, host);
    let rolled = rolling_restart_in_planned_order(z, c, &mut install).await?;
    // The old standby serves now: its controller started with the new files.
    let on_standby = peek_controller(z, creds.client_files(&producer_cn)).await;
    c.event(format!(
        "planned handover from {} back to {}",
        rolled.standby, rolled.active
    ));
    z.restart_agent(&rolled.standby).await?;
    takes_over(c, &v, &rolled.standby, &rolled.active).await;
    c.fault_ended("every host restarted with its new certificates");

    let controller_pem = pki.certificate("controller")?;
    match on_standby {
        Ok(s) => c.check(
            &format!(
                "after: the controller on {} serves the new certificate",
                rolled.standby
            ),
            s.is(&controller_pem),
            s.to_string(),
        ),
        Err(e) => c.check(
            &format!(
                "after: the controller on {} serves the new certificate",
                rolled.standby
            ),
            false,
            e,
        ),
    };
    let after = served(z).await?;
    for (old, new) in before.iter().zip(&after) {
        let expected = pki.certificate(&new.certificate)?;
        c.check(
            &format!("after: {} serves the renewed certificate", new.what),
            new.served.is(&expected) && new.served.serial != old.served.serial,
            format!("was {}, now {}", old.served, new.served),
        );
    }
    for h in z.spec.host_names() {
        let r = pki.pki(&["check"], &["--host", h], false);
        c.check(
            &format!("bsfgctl pki check --host {h} passes on its installed files"),
            r.is_ok(),
            r.map_or_else(|e| format!("{e:#}"), |_| "exit 0".into()),
        );
    }
    for (which, tag, tls) in [
        ("renewed", "new", client_files(&new_producer, &producer_cn)),
        ("old (still valid)", "old", creds.client_files(&producer_cn)),
    ] {
        let id = format!("cert-rotation-{}-{tag}-client", z.instance);
        let name = format!("an append with the producer's {which} certificate is acknowledged");
        check_append(z, c, tls, id, &name).await;
    }
    serves_again(c, &v, PROMOTION_TIMEOUT).await;
    Ok(())
}
