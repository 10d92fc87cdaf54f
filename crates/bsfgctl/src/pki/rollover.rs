//! `bsfgctl pki rollover`: replacing the zone CA without downtime (it
//! expires, it is compromised, or the zone moves to an enterprise
//! intermediate). The order and its refusals are bsfg-pki's
//! [`bsfg_pki::rollover`]; this is the CA directory's side of each step.

use super::{
    CaDir, IssueRow, NewCaArgs, ZoneArg, date, issue_some, load_zone, print_issue_rows, usage,
};
use crate::exit::{self, Result};
use crate::identity::ConfigFile;
use bsfg_pki::files::{self, CERTIFICATE_MODE, KEY_MODE};
use bsfg_pki::plan::Plan;
use bsfg_pki::rollover::{self, CaIdentity, Phase, Rollover, Step};
use bsfg_pki::{Authority, inspect};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::{Path, PathBuf};

const ORDER: &str = "\
The order, with a rolling restart of the whole zone after each step
(gamma, the standby, a planned handover, the old active host: the order of
`bsfgctl upgrade plan`; docs/runbooks/certificate-rotation.md):

  1. begin    the new CA is created (or --ca-cert/--ca-key taken); the trust
              bundle holds the old and the new CA. Copy pki/hosts/<host>/ onto
              each host and restart nats.service and bsfg-gate-agent.service
              host by host; give every client pki/bundle.pem as its CA file.
  2. reissue  every certificate of the zone is issued again, by the new CA.
              Copy and restart the same way; give every client its new
              certificate (pki/certificates/client-<identity>.pem).
  3. finish   the trust bundle holds the new CA only; the old CA is archived
              (pki/archive/). Copy and restart the same way; clients take the
              new pki/bundle.pem. From now on, a certificate of the old CA is
              refused.

A step run before the previous one is refused and names the step that is
due (the state is pki/rollover.json). `bsfgctl pki rollover status` and
`bsfgctl pki check` show where the rollover stands.";

#[derive(Debug, Subcommand)]
#[command(about = "Replace the zone CA without downtime: begin, roll, reissue, roll, finish, roll", long_about = None, after_long_help = ORDER)]
pub enum RolloverCommand {
    /// Step 1: create the new CA (or take an enterprise intermediate) and trust the old and the new.
    #[command(after_long_help = ORDER)]
    Begin(BeginArgs),
    /// Step 2 (after every host was restarted with the bundle): re-issue every certificate from the new CA.
    #[command(after_long_help = ORDER)]
    Reissue(ReissueArgs),
    /// Step 3 (after every host and client has its new certificate): trust the new CA only, archive the old.
    #[command(after_long_help = ORDER)]
    Finish(FinishArgs),
    /// Where a rollover stands: the phase, both CAs and the next step.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct BeginArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
    /// The new CA: created, or taken with --ca-cert/--ca-key (e.g. an enterprise intermediate).
    #[command(flatten)]
    pub ca: NewCaArgs,
}

#[derive(Debug, Args)]
pub struct ReissueArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
    /// Validity of each certificate.
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub days: i64,
}

#[derive(Debug, Args)]
pub struct FinishArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
}

pub fn command(c: &RolloverCommand, file: &ConfigFile, json: bool) -> Result<u8> {
    match c {
        RolloverCommand::Begin(a) => begin(a, file, json),
        RolloverCommand::Reissue(a) => reissue(a, file, json),
        RolloverCommand::Finish(a) => finish(a, file, json),
        RolloverCommand::Status(a) => status(a, json),
    }
}

/// What a step did, for `--json` and the summary.
#[derive(Debug, Serialize)]
struct StepReport {
    step: Step,
    /// After the step; none: no rollover in progress.
    phase: Option<Phase>,
    /// The CAs of the trust bundle now, in order.
    trusted: Vec<CaIdentity>,
    /// The CA that issues now.
    issuing: CaIdentity,
    bundle: String,
    /// The hosts whose staged trees changed: copy each onto its host.
    staged: Vec<String>,
    /// What to restart on each host, in the planned order.
    restart: Vec<&'static str>,
    /// What each client needs now.
    clients: String,
    /// The step due next; none when the rollover is done.
    next: Option<Step>,
    /// Certificates issued (reissue).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<IssueRow>,
    /// Where the old CA went (finish).
    #[serde(skip_serializing_if = "Option::is_none")]
    archived: Option<String>,
}

const RESTART: [&str; 2] = ["nats.service", "bsfg-gate-agent.service"];

impl StepReport {
    /// The report of `step`, which led to `state`.
    fn new(dir: &CaDir<'_>, plan: &Plan, step: Step, state: &Rollover, clients: String) -> Self {
        StepReport {
            step,
            phase: Some(state.phase),
            trusted: state.trusted().map(Clone::clone).to_vec(),
            issuing: state.issuing().clone(),
            bundle: dir.bundle().display().to_string(),
            staged: plan.hosts(),
            restart: RESTART.to_vec(),
            clients,
            next: Some(state.phase.next()),
            certificates: vec![],
            archived: None,
        }
    }
}

impl CaDir<'_> {
    fn state_file(&self) -> PathBuf {
        self.0.join("rollover.json")
    }
    fn rollover(&self) -> PathBuf {
        self.0.join("rollover")
    }
    fn new_ca(&self) -> (PathBuf, PathBuf) {
        (
            self.rollover().join("new-ca.pem"),
            self.rollover().join("new-ca.key"),
        )
    }
    fn old_ca(&self) -> (PathBuf, PathBuf) {
        (
            self.rollover().join("old-ca.pem"),
            self.rollover().join("old-ca.key"),
        )
    }
    fn archive(&self, sha256: &str) -> PathBuf {
        self.0.join("archive").join(sha256)
    }
}

/// The rollover in progress in `dir`, if any.
pub(super) fn read_state(dir: &CaDir<'_>) -> Result<Option<Rollover>> {
    let path = dir.state_file();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(usage(format!("{}: {e}", path.display()))),
    }
}

fn write_state(dir: &CaDir<'_>, r: &Rollover) -> Result<()> {
    let json = serde_json::to_vec_pretty(r).map_err(usage)?;
    files::write(&dir.state_file(), &json, CERTIFICATE_MODE).map_err(usage)
}

/// Refuses `step` unless it is the one due; the phase it leads to.
fn allowed(state: Option<&Rollover>, step: Step) -> Result<Option<Phase>> {
    Rollover::step(state.map(|r| r.phase), step).map_err(usage)
}

fn identity(pem: &str) -> Result<CaIdentity> {
    let facts = inspect::parse_pem(pem.as_bytes()).map_err(usage)?;
    Ok(CaIdentity {
        subject: facts.subject,
        sha256: inspect::sha256(pem.as_bytes()).map_err(usage)?,
        not_after: facts.not_after,
    })
}

fn write_ca(cert: &Path, key: &Path, authority: &Authority) -> Result<()> {
    // The key first: a certificate without its key is never the newer file.
    files::write(key, authority.private_key_pem().as_bytes(), KEY_MODE).map_err(usage)?;
    files::write(
        cert,
        authority.certificate_pem().as_bytes(),
        CERTIFICATE_MODE,
    )
    .map_err(usage)
}

fn load_ca(cert: &Path, key: &Path) -> Result<Authority> {
    let c = files::read(cert).map_err(usage)?;
    let k = files::read(key).map_err(usage)?;
    Authority::load(&c, &k).map_err(usage)
}

fn begin(a: &BeginArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let (_, plan) = load_zone(&a.zone, file)?;
    let dir = CaDir(&a.zone.dir);
    let phase = allowed(read_state(&dir)?.as_ref(), Step::Begin)?;
    let old = dir.authority()?;
    let old_facts = inspect::parse_pem(old.certificate_pem().as_bytes()).map_err(usage)?;
    let new = a.ca.authority(&rollover::next_common_name(
        &plan.ca.common_name,
        old_facts.common_name.as_deref(),
    ))?;
    let (old_id, new_id) = (
        identity(old.certificate_pem())?,
        identity(new.certificate_pem())?,
    );
    if old_id.sha256 == new_id.sha256 {
        return Err(usage(format!(
            "--ca-cert is the CA the zone has now ({}): a rollover needs another CA",
            old_id.subject
        )));
    }
    if old_id.subject == new_id.subject {
        return Err(usage(format!(
            "the new CA has the subject of the old one ({}): verifiers follow issuer names, so the two must differ",
            old_id.subject
        )));
    }
    let (cert, key) = dir.new_ca();
    write_ca(&cert, &key, &new)?;
    let bundle = rollover::bundle_pem(&[old.certificate_pem(), new.certificate_pem()]);
    dir.write_bundle(&bundle)?;
    dir.stage_trust(&plan, &bundle)?;
    let state = Rollover {
        phase: Phase::TrustBoth,
        old: old_id,
        new: new_id,
        begun: super::now(),
        reissued: None,
    };
    debug_assert_eq!(phase, Some(state.phase));
    write_state(&dir, &state)?;
    let clients = format!(
        "replace each client's CA file with {} (it trusts both CAs)",
        dir.bundle().display()
    );
    let r = StepReport::new(&dir, &plan, Step::Begin, &state, clients);
    report(&dir, &plan, r, json)
}

fn reissue(a: &ReissueArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let (_, plan) = load_zone(&a.zone, file)?;
    let dir = CaDir(&a.zone.dir);
    let Some(mut state) = read_state(&dir)? else {
        allowed(None, Step::Reissue)?;
        unreachable!("a reissue without a rollover is refused");
    };
    let phase = allowed(Some(&state), Step::Reissue)?;
    let (new_cert, new_key) = dir.new_ca();
    let new = load_ca(&new_cert, &new_key)?;
    if identity(new.certificate_pem())?.sha256 != state.new.sha256 {
        return Err(usage(format!(
            "{} is not the new CA `begin` recorded ({}, sha256 {})",
            new_cert.display(),
            state.new.subject,
            state.new.sha256
        )));
    }
    // The old CA is kept for `finish` to archive; a rerun after a crash
    // finds it already copied (ca.pem may be the new CA by then).
    let (old_cert, old_key) = dir.old_ca();
    if !old_cert.exists() {
        let old = dir.authority()?;
        if identity(old.certificate_pem())?.sha256 != state.old.sha256 {
            return Err(usage(format!(
                "{} is not the old CA `begin` recorded ({})",
                dir.ca_cert().display(),
                state.old.subject
            )));
        }
        write_ca(&old_cert, &old_key, &old)?;
    }
    write_ca(&dir.ca_cert(), &dir.ca_key(), &new)?;
    let todo: Vec<_> = plan
        .certificates
        .iter()
        .map(|c| (c, "CA rollover".to_owned()))
        .collect();
    let certificates = issue_some(&dir, &plan, &todo, a.days)?;
    state.phase = Phase::Reissued;
    state.reissued = Some(super::now());
    debug_assert_eq!(phase, Some(state.phase));
    write_state(&dir, &state)?;
    let clients = format!(
        "give each client its new certificate and key ({}/client-<identity>.pem|key) before `finish`",
        dir.0.join("certificates").display()
    );
    let mut r = StepReport::new(&dir, &plan, Step::Reissue, &state, clients);
    r.certificates = certificates;
    report(&dir, &plan, r, json)
}

fn finish(a: &FinishArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let (_, plan) = load_zone(&a.zone, file)?;
    let dir = CaDir(&a.zone.dir);
    let Some(state) = read_state(&dir)? else {
        allowed(None, Step::Finish)?;
        unreachable!("a finish without a rollover is refused");
    };
    let phase = allowed(Some(&state), Step::Finish)?;
    let issuing = files::read(&dir.ca_cert()).map_err(usage)?;
    if identity(&issuing)?.sha256 != state.new.sha256 {
        return Err(usage(format!(
            "{} is not the new CA {}: run `{}` again",
            dir.ca_cert().display(),
            state.new.subject,
            Step::Reissue.command()
        )));
    }
    // Nothing the zone holds may still need the old CA.
    for c in &plan.certificates {
        let Some(i) = dir.read_issued(&c.name) else {
            continue;
        };
        if let Err(e) = inspect::verify_signed_by(&i.certificate_pem, &issuing) {
            return Err(usage(format!(
                "{}: {e}; re-issue it (`bsfgctl pki renew`) before `finish`",
                c.name
            )));
        }
    }
    let (old_cert, old_key) = dir.old_ca();
    let archive = dir.archive(&state.old.sha256);
    if old_cert.exists() {
        for (from, name, mode) in [
            (&old_key, "ca.key", KEY_MODE),
            (&old_cert, "ca.pem", CERTIFICATE_MODE),
        ] {
            let bytes =
                std::fs::read(from).map_err(|e| usage(format!("{}: {e}", from.display())))?;
            files::write(&archive.join(name), &bytes, mode).map_err(usage)?;
        }
    }
    let bundle = rollover::bundle_pem(&[&issuing]);
    dir.write_bundle(&bundle)?;
    dir.stage_trust(&plan, &bundle)?;
    std::fs::remove_file(dir.state_file())
        .map_err(|e| usage(format!("{}: {e}", dir.state_file().display())))?;
    std::fs::remove_dir_all(dir.rollover())
        .map_err(|e| usage(format!("{}: {e}", dir.rollover().display())))?;
    let clients = format!(
        "replace each client's CA file with {} (the new CA only)",
        dir.bundle().display()
    );
    let mut r = StepReport::new(&dir, &plan, Step::Finish, &state, clients);
    (r.phase, r.next, r.trusted) = (phase, None, vec![state.new.clone()]);
    r.issuing = state.new.clone();
    r.archived = Some(archive.display().to_string());
    report(&dir, &plan, r, json)
}

#[derive(Debug, Serialize)]
struct StatusReport {
    /// None: no rollover in progress.
    phase: Option<Phase>,
    rollover: Option<Rollover>,
    /// The CAs of the trust bundle, in order.
    trusted: Vec<CaIdentity>,
    next: Step,
}

fn status(a: &StatusArgs, json: bool) -> Result<u8> {
    let dir = CaDir(&a.zone.dir);
    let state = read_state(&dir)?;
    let trust = dir.trust_pem()?;
    let trusted = inspect::split_pem(&trust)
        .map_err(|e| usage(format!("the trust bundle: {e}")))?
        .iter()
        .map(|pem| identity(pem))
        .collect::<Result<Vec<_>>>()?;
    let r = StatusReport {
        phase: state.as_ref().map(|s| s.phase),
        next: state.as_ref().map_or(Step::Begin, |s| s.phase.next()),
        rollover: state,
        trusted,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r).map_err(usage)?);
        return Ok(exit::OK);
    }
    match &r.rollover {
        None => println!("no CA rollover in progress"),
        Some(s) => println!(
            "CA rollover in progress: phase {} (begun {}), old CA {}, new CA {}",
            s.phase.token(),
            date(s.begun),
            s.old.subject,
            s.new.subject
        ),
    }
    for c in &r.trusted {
        println!(
            "trusted {} until {} (sha256 {})",
            c.subject,
            date(c.not_after),
            c.sha256
        );
    }
    println!("next step: `{}`", r.next.command());
    Ok(exit::OK)
}

fn report(dir: &CaDir<'_>, plan: &Plan, r: StepReport, json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(&r).map_err(usage)?);
        return Ok(exit::OK);
    }
    if !r.certificates.is_empty() {
        print_issue_rows(&r.certificates, false)?;
    }
    let trusted: Vec<&str> = r.trusted.iter().map(|c| c.subject.as_str()).collect();
    println!(
        "{}: the trust bundle {} holds {}; {} issues",
        r.step.command(),
        r.bundle,
        trusted.join(" and "),
        r.issuing.subject
    );
    if let Some(a) = &r.archived {
        println!("the old CA and its key are archived in {a}");
    }
    println!(
        "now: copy {}/<host>/ onto each host ({}) and restart {} host by host in the planned order (`bsfgctl upgrade plan`)",
        dir.hosts().display(),
        plan.hosts().join(", "),
        r.restart.join(" and ")
    );
    println!("clients: {}", r.clients);
    match r.next {
        Some(n) => println!("then: `{}`", n.command()),
        None => println!("the CA rollover is done"),
    }
    Ok(exit::OK)
}
