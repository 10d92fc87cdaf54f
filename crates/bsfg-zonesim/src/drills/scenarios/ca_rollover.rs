//! The zone CA replaced without downtime, as an operator does it with
//! `bsfgctl pki rollover` (docs/runbooks/certificate-rotation.md). Under
//! load: `begin` (the trust bundle holds the old and the new CA), a
//! rolling restart; `reissue` (every certificate from the new CA; clients
//! get theirs), a rolling restart; `finish` (the new CA only), a rolling
//! restart. A step run early is refused. At the end every daemon presents a
//! certificate of the new CA, and a handshake with a client certificate of
//! the old CA is refused by the controller and by every nats-server route
//! port, while the new one is accepted.

use super::pki_rollout::{
    CaDirectory, Listening, check_append, client_files, install_client, install_staged, served,
    trust_bundle,
};
use super::rolling::rolling_restart_in_planned_order;
use super::{Ctx, PROMOTION_TIMEOUT, contract, hosts, roles, serves_again};
use crate::netns;
use crate::observe::served_certificate::{self, ClientVerdict, Listener};
use crate::zone::Zone;
use crate::zone::credentials::nats_route_identity;
use anyhow::{Context, Result};
use bsfg_core::config::TlsFiles;
use bsfg_pki::files::{CERTIFICATE_MODE, KEY_MODE};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const VERDICT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn ca_rollover(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (_, b, _) = roles(z);
    let v = c.samples();
    // Three rolls, each a planned handover: the standby of the start serves.
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "Zone CA rollover: trust both, reissue, trust the new only, a rolling restart after each; no acknowledged fact lost, one controller at a time",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.target = Some(b.clone());
    let creds = z
        .credentials()
        .context("no CA in this process (certificates are made by `up`)")?;
    let work = z.run_dir.join("pki-ca-rollover");
    let pki = CaDirectory::export(z, &work)?;
    let staging = pki.staging();
    let spec = z.spec.clone();
    let mut install = |host: &str| install_staged(&spec, &staging, host);
    let client_dir = creds.client_dir.clone();
    let producer_cn = z.workload.producer.clone();

    // What the old CA issued, kept to be refused at the end: the
    // producer's certificate and every route certificate.
    let old = work.join("old-ca-clients");
    keep_copy(&creds.client_files(&producer_cn), &old, &producer_cn)?;
    for h in z.spec.host_names() {
        keep_copy(&route_files(z, h), &old, &format!("nats-route-{h}"))?;
    }

    let begun = pki.pki_json(&["rollover", "begin"], &[])?;
    let new_ca = begun["trusted"][1]["subject"]
        .as_str()
        .context("pki rollover begin --json names no new CA")?
        .to_owned();
    c.check(
        "bsfgctl pki rollover begin: the trust bundle holds the old and the new CA",
        begun["phase"] == "trust-both" && begun["trusted"].as_array().map(Vec::len) == Some(2),
        format!("phase {}, trusted {}", begun["phase"], begun["trusted"]),
    );
    let (code, out) = pki.pki_exit(&["rollover", "finish"], &[])?;
    c.check(
        "bsfgctl pki rollover finish before reissue is refused (exit 2), the rollover unchanged",
        code == Some(2) && pki.pki_json(&["rollover", "status"], &[])?["phase"] == "trust-both",
        format!("exit {code:?}: {}", out.trim()),
    );
    // Every client (the load's producer and reader, bsfgctl) trusts both.
    copy(
        &trust_bundle(&pki.dir),
        &client_dir.join("ca.pem"),
        CERTIFICATE_MODE,
    )?;

    c.fault("CA rollover begun (both CAs trusted); rolling restart 1/3");
    rolling_restart_in_planned_order(z, c, &mut install).await?;

    let reissued = pki.pki_json(&["rollover", "reissue"], &[])?;
    let planned = z.spec.pki.certificates.len();
    let by_new = reissued["certificates"].as_array().map_or(0, |rows| {
        rows.iter()
            .filter(|r| r["issuer"] == new_ca.as_str())
            .count()
    });
    c.check(
        "bsfgctl pki rollover reissue: every certificate of the plan issued by the new CA",
        reissued["phase"] == "reissued" && by_new == planned,
        format!("{by_new} of {planned} by {new_ca}"),
    );
    // The clients take their new certificates (the bundle still trusts both).
    for cert in z
        .spec
        .pki
        .certificates
        .iter()
        .filter(|c| c.installs.is_empty())
    {
        install_client(z, &pki.dir, &cert.common_name, &client_dir)?;
    }
    c.event("every certificate reissued by the new CA; rolling restart 2/3");
    rolling_restart_in_planned_order(z, c, &mut install).await?;

    let finished = pki.pki_json(&["rollover", "finish"], &[])?;
    c.check(
        "bsfgctl pki rollover finish: the trust bundle holds the new CA only, the old one archived",
        finished["phase"].is_null()
            && finished["trusted"].as_array().map(Vec::len) == Some(1)
            && finished["archived"]
                .as_str()
                .is_some_and(|a| Path::new(a).join("ca.key").exists()),
        format!(
            "trusted {}, archived {}",
            finished["trusted"], finished["archived"]
        ),
    );
    copy(
        &trust_bundle(&pki.dir),
        &client_dir.join("ca.pem"),
        CERTIFICATE_MODE,
    )?;
    c.event("the old CA no longer trusted; rolling restart 3/3");
    rolling_restart_in_planned_order(z, c, &mut install).await?;
    c.fault_ended("every host restarted trusting the new CA only");

    for l in served(z).await? {
        check_served(c, &pki, &l, &new_ca)?;
    }
    let check = pki.pki(&["check"], &[], true);
    c.check(
        "bsfgctl pki check passes on the CA directory after the rollover",
        check.is_ok(),
        check.map_or_else(|e| format!("{e:#}"), |_| "exit 0".into()),
    );
    for h in z.spec.host_names() {
        let r = pki.pki(&["check"], &["--host", h], false);
        c.check(
            &format!("bsfgctl pki check --host {h}: its files trust and chain to the new CA only"),
            r.is_ok(),
            r.map_or_else(|e| format!("{e:#}"), |_| "exit 0".into()),
        );
    }

    // The old CA's certificates against the new trust; the new ones as the
    // control (a refusal for any other reason would fail it).
    let new_bundle = trust_bundle(&pki.dir);
    let with_new_trust = |files: TlsFiles| TlsFiles {
        ca: new_bundle.clone(),
        ..files
    };
    let vip = SocketAddr::new(z.spec.vip.address.into(), z.spec.ports.controller);
    let vip_name = z.spec.vip.address.to_string();
    let mut probes = vec![(
        "the controller".to_owned(),
        netns::CLIENT.to_owned(),
        Listener::Controller,
        vip,
        vip_name,
        with_new_trust(client_files(&old, &producer_cn)),
        with_new_trust(creds.client_files(&producer_cn)),
    )];
    for h in z.spec.host_names() {
        let name = format!("nats-route-{h}");
        probes.push((
            format!("nats-server's route port on {h}"),
            h.to_owned(),
            Listener::NatsRoute,
            SocketAddr::new(z.spec.host(h).address.into(), z.spec.ports.nats_cluster),
            nats_route_identity(&z.spec.zone),
            with_new_trust(client_files(&old, &name)),
            with_new_trust(route_files(z, h)),
        ));
    }
    for (what, ns, listener, addr, name, old_files, new_files) in probes {
        let old_verdict = verdict(z, &ns, listener, addr, &name, old_files).await?;
        c.check(
            &format!("{what} refuses a client certificate of the old CA (TLS handshake)"),
            matches!(old_verdict, Ok(ClientVerdict::Refused(_))),
            format!("{old_verdict:?}"),
        );
        let new_verdict = verdict(z, &ns, listener, addr, &name, new_files).await?;
        c.check(
            &format!("{what} accepts a client certificate of the new CA (TLS handshake)"),
            new_verdict == Ok(ClientVerdict::Accepted),
            format!("{new_verdict:?}"),
        );
    }
    let id = format!("ca-rollover-{}-new-client", z.instance);
    check_append(
        z,
        c,
        creds.client_files(&producer_cn),
        id,
        "an append with the producer's certificate of the new CA is acknowledged",
    )
    .await;
    serves_again(c, &v, PROMOTION_TIMEOUT).await;
    Ok(())
}

/// What the daemon presents is the reissued certificate, issued by the new CA.
fn check_served(c: &mut Ctx, pki: &CaDirectory, l: &Listening, new_ca: &str) -> Result<()> {
    let expected = pki.certificate(&l.certificate)?;
    let issuer = x509_parser::parse_x509_certificate(&l.served.der)
        .map(|(_, cert)| cert.issuer().to_string())
        .unwrap_or_else(|e| format!("unparsable: {e}"));
    c.check(
        &format!("after: {} presents its certificate of the new CA", l.what),
        l.served.is(&expected) && issuer == new_ca,
        format!("{}, issued by {issuer}", l.served),
    );
    Ok(())
}

async fn verdict(
    z: &Zone,
    ns: &str,
    listener: Listener,
    addr: SocketAddr,
    name: &str,
    tls: TlsFiles,
) -> Result<Result<ClientVerdict, String>> {
    let name = name.to_owned();
    z.in_ns(ns, move || async move {
        served_certificate::client_verdict(listener, addr, &name, &tls, VERDICT_TIMEOUT).await
    })
    .await
}

/// The route certificate installed on `host` (also a client certificate:
/// routes dial each other).
fn route_files(z: &Zone, host: &str) -> TlsFiles {
    let route = &z.spec.host(host).paths.nats_route;
    TlsFiles {
        certificate: route.certificate.clone(),
        private_key: route.private_key.clone(),
        ca: route.ca.clone(),
    }
}

/// Copies the certificate and key of `files` into `dir` as `<name>.pem|key`.
fn keep_copy(files: &TlsFiles, dir: &Path, name: &str) -> Result<()> {
    let to = client_files(dir, name);
    copy(&files.certificate, &to.certificate, CERTIFICATE_MODE)?;
    copy(&files.private_key, &to.private_key, KEY_MODE)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    bsfg_pki::files::write(to, &bytes, mode)?;
    Ok(())
}
