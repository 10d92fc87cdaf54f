//! `bsfgctl pki`: the zone CA and every certificate of the zone's
//! certificate plan (`pki` in zone.json, computed by modules/lib/pki.nix),
//! issued with bsfg-pki, the library the simulator and the test kit use.
//!
//! The CA directory (`--dir`, on the CA machine, never on the hosts):
//!
//! ```text
//! ca.pem  ca.key                        the CA that issues (the zone CA, or the intermediate given to `init`)
//! bundle.pem                            the trust bundle: what every verifier trusts (the CA; old and new
//!                                       during a rollover); staged as each host's `ca.pem`, given to clients
//! certificates/<name>.pem  <name>.key   every issued certificate: controller, nats-route-<host>, client-<identity>, probe
//! hosts/<host>/<path>                   each host's files at the paths the zone library expects,
//!                                       with their modes: copy the tree onto the host's root
//! rollover.json  rollover/              a CA rollover in progress (`pki rollover`): its phase, the new
//!                                       (and, after `reissue`, the old) CA
//! archive/<sha256>/ca.pem  ca.key       CAs retired by `pki rollover finish`
//! ```

mod rollover;

use crate::exit::{self, CliError, Result};
use crate::identity::ConfigFile;
use crate::output::table;
use crate::zone::file::ZoneFile;
use bsfg_pki::files::{self, CERTIFICATE_MODE, KEY_MODE};
use bsfg_pki::issue::{self, Target};
use bsfg_pki::plan::{Certificate, Plan};
use bsfg_pki::{Authority, Expiry, Issued, Validity, inspect};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the zone CA in --dir, or take an existing (enterprise intermediate) CA.
    Init(InitArgs),
    /// Issue every certificate of the zone that is not issued yet, and stage each host's files.
    Issue(IssueArgs),
    /// Re-issue (new key) every certificate that expires within --within or no longer matches the zone.
    Renew(RenewArgs),
    /// Report the trust bundle's CAs and every certificate's expiry, issuing CA, key and names; exit 1 on any problem.
    Check(CheckArgs),
    /// Replace the zone CA without downtime: begin, roll, reissue, roll, finish, roll.
    #[command(subcommand)]
    Rollover(rollover::RolloverCommand),
}

#[derive(Debug, Clone, Args)]
pub struct ZoneArg {
    /// The zone description (JSON from modules/lib/operator.nix; /etc/bsfg/zone.json on the appliance).
    #[arg(long, env = "BSFG_CLI_ZONE_FILE", value_name = "FILE")]
    pub zone_file: Option<PathBuf>,
    /// The CA directory (keep it offline: it holds the CA key and every private key).
    #[arg(long, default_value = "pki", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
    #[command(flatten)]
    pub ca: NewCaArgs,
}

/// A CA to create, or an existing one to take (`init`, `rollover begin`).
#[derive(Debug, Args)]
pub struct NewCaArgs {
    /// Validity of a new CA.
    #[arg(long, default_value_t = 3650, value_name = "DAYS")]
    pub days: i64,
    /// Use this existing CA certificate (PEM, e.g. an enterprise intermediate) instead of creating one.
    #[arg(long, requires = "ca_key", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The private key of --ca-cert (PEM).
    #[arg(long, requires = "ca_cert", value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
}

impl NewCaArgs {
    /// The existing CA given, or a new one named `common_name`.
    fn authority(&self, common_name: &str) -> Result<Authority> {
        match (&self.ca_cert, &self.ca_key) {
            (Some(c), Some(k)) => {
                let cert = files::read(c).map_err(usage)?;
                let key = files::read(k).map_err(usage)?;
                Authority::load(&cert, &key).map_err(usage)
            }
            _ => {
                Authority::generate(common_name, Validity::days_from_now(self.days)).map_err(usage)
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
    /// Validity of each certificate.
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub days: i64,
    /// Re-issue certificates that are already issued (new keys).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
    /// Renew what expires within this time (the old certificate stays valid until it expires:
    /// roll the hosts one at a time).
    #[arg(long, default_value = "60d", value_parser = humantime::parse_duration)]
    pub within: Duration,
    /// Validity of each renewed certificate.
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub days: i64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub zone: ZoneArg,
    /// Check the files installed on this host (at their real paths, or under --root) instead of --dir.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// With --host: where the host's root is (a staged tree: `<dir>/hosts/<host>`).
    #[arg(long, default_value = "/", value_name = "DIR", requires = "host")]
    pub root: PathBuf,
    /// Minimum remaining validity; default: the zone's certificatePolicy.minValidity.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub min_validity: Option<Duration>,
}

pub fn command(c: &PkiCommand, file: &ConfigFile, json: bool) -> Result<u8> {
    match c {
        PkiCommand::Init(a) => init(a, file),
        PkiCommand::Issue(a) => issue_command(a, file, json),
        PkiCommand::Renew(a) => renew(a, file, json),
        PkiCommand::Check(a) => check(a, file, json),
        PkiCommand::Rollover(c) => rollover::command(c, file, json),
    }
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn load_zone(a: &ZoneArg, file: &ConfigFile) -> Result<(ZoneFile, Plan)> {
    let zone = ZoneFile::load_required(a.zone_file.as_deref(), file)?;
    let plan = zone.pki.clone().ok_or_else(|| {
        usage("the zone file has no `pki` certificate plan; regenerate it with modules/lib/operator.nix")
    })?;
    Ok((zone, plan))
}

struct CaDir<'a>(&'a Path);

impl CaDir<'_> {
    fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    fn bundle(&self) -> PathBuf {
        self.0.join("bundle.pem")
    }
    /// What every verifier trusts: `bundle.pem`, or the CA alone in a CA
    /// directory made before trust bundles.
    fn trust_pem(&self) -> Result<String> {
        let path = if self.bundle().exists() {
            self.bundle()
        } else {
            self.ca_cert()
        };
        files::read(&path).map_err(|e| usage(format!("{e} (run `bsfgctl pki init` first)")))
    }
    fn write_bundle(&self, pem: &str) -> Result<()> {
        files::write(&self.bundle(), pem.as_bytes(), CERTIFICATE_MODE).map_err(usage)
    }
    fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    fn cert(&self, name: &str) -> PathBuf {
        self.0.join("certificates").join(format!("{name}.pem"))
    }
    fn key(&self, name: &str) -> PathBuf {
        self.0.join("certificates").join(format!("{name}.key"))
    }
    fn hosts(&self) -> PathBuf {
        self.0.join("hosts")
    }
    fn authority(&self) -> Result<Authority> {
        let cert = files::read(&self.ca_cert())
            .map_err(|e| usage(format!("{e} (run `bsfgctl pki init` first)")))?;
        let key = files::read(&self.ca_key()).map_err(usage)?;
        Authority::load(&cert, &key).map_err(usage)
    }
    fn read_issued(&self, name: &str) -> Option<Issued> {
        Some(Issued {
            certificate_pem: std::fs::read_to_string(self.cert(name)).ok()?,
            private_key_pem: std::fs::read_to_string(self.key(name)).ok()?,
        })
    }
    /// Stages the trust bundle as every host's CA file: the plan's CA
    /// installs and the CA path of every installed certificate.
    fn stage_trust(&self, plan: &Plan, trust_pem: &str) -> Result<()> {
        let staging = Target::Staging(&self.hosts());
        issue::install_ca(plan, trust_pem, staging).map_err(usage)?;
        for c in &plan.certificates {
            if let Some(issued) = self.read_issued(&c.name) {
                issue::install(c, &issued, trust_pem, staging).map_err(usage)?;
            }
        }
        Ok(())
    }
    fn store(&self, c: &Certificate, issued: &Issued, ca_pem: &str) -> Result<()> {
        files::write(
            &self.cert(&c.name),
            issued.certificate_pem.as_bytes(),
            CERTIFICATE_MODE,
        )
        .map_err(usage)?;
        files::write(
            &self.key(&c.name),
            issued.private_key_pem.as_bytes(),
            KEY_MODE,
        )
        .map_err(usage)?;
        issue::install(c, issued, ca_pem, Target::Staging(&self.hosts())).map_err(usage)?;
        Ok(())
    }
}

fn init(a: &InitArgs, file: &ConfigFile) -> Result<u8> {
    let (_, plan) = load_zone(&a.zone, file)?;
    let dir = CaDir(&a.zone.dir);
    if dir.ca_key().exists() {
        return Err(usage(format!(
            "{} exists: refusing to replace the zone CA (every certificate chains to it)",
            dir.ca_key().display()
        )));
    }
    let authority = a.ca.authority(&plan.ca.common_name)?;
    files::write(
        &dir.ca_key(),
        authority.private_key_pem().as_bytes(),
        KEY_MODE,
    )
    .map_err(usage)?;
    files::write(
        &dir.ca_cert(),
        authority.certificate_pem().as_bytes(),
        CERTIFICATE_MODE,
    )
    .map_err(usage)?;
    dir.write_bundle(authority.certificate_pem())?;
    let facts = inspect::parse_pem(authority.certificate_pem().as_bytes()).map_err(usage)?;
    println!(
        "zone CA {} ({}), valid until {}: {}",
        facts.subject,
        if a.ca.ca_cert.is_some() {
            "existing"
        } else {
            "new"
        },
        date(facts.not_after),
        dir.ca_cert().display()
    );
    Ok(exit::OK)
}

/// One certificate that `issue`, `renew` or `rollover reissue` issued or kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueRow {
    pub name: String,
    pub common_name: String,
    /// `issued` or `kept`.
    pub action: &'static str,
    /// Why: "not issued yet", the problems found, "rollover".
    pub reason: String,
    /// The CA that issued it (subject).
    pub issuer: String,
    pub not_after: i64,
    /// The hosts whose staged trees hold it; empty for client identities.
    pub hosts: Vec<String>,
    /// Where the certificate is in the CA directory.
    pub path: String,
}

/// Issues `certs` (with the reason for each) and stages every host's files
/// (the trust bundle too).
fn issue_some(
    dir: &CaDir<'_>,
    plan: &Plan,
    certs: &[(&Certificate, String)],
    days: i64,
) -> Result<Vec<IssueRow>> {
    let authority = dir.authority()?;
    let trust = dir.trust_pem()?;
    let issuer = inspect::parse_pem(authority.certificate_pem().as_bytes())
        .map_err(usage)?
        .subject;
    issue::install_ca(plan, &trust, Target::Staging(&dir.hosts())).map_err(usage)?;
    let mut rows = Vec::new();
    for (c, reason) in certs {
        let validity = Validity::days_from_now(days);
        let issued = authority.issue(&c.request(), validity).map_err(usage)?;
        dir.store(c, &issued, &trust)?;
        rows.push(IssueRow {
            name: c.name.clone(),
            common_name: c.common_name.clone(),
            action: "issued",
            reason: reason.clone(),
            issuer: issuer.clone(),
            not_after: validity.not_after.unix_timestamp(),
            hosts: c.installs.iter().map(|i| i.host.clone()).collect(),
            path: dir.cert(&c.name).display().to_string(),
        });
    }
    Ok(rows)
}

fn kept(c: &Certificate, reason: String, dir: &CaDir<'_>) -> IssueRow {
    let facts = dir
        .read_issued(&c.name)
        .and_then(|i| inspect::parse_pem(i.certificate_pem.as_bytes()).ok());
    IssueRow {
        name: c.name.clone(),
        common_name: c.common_name.clone(),
        action: "kept",
        reason,
        issuer: facts.as_ref().map(|f| f.issuer.clone()).unwrap_or_default(),
        not_after: facts.map_or(0, |f| f.not_after),
        hosts: c.installs.iter().map(|i| i.host.clone()).collect(),
        path: dir.cert(&c.name).display().to_string(),
    }
}

/// The rows of `issue`/`renew`: one line each, or JSON.
fn print_issue_rows(rows: &[IssueRow], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows).map_err(usage)?);
        return Ok(());
    }
    for r in rows {
        match r.action {
            "issued" => println!(
                "issued {:<24} CN={} until {} by {} -> {} ({})",
                r.name,
                r.common_name,
                date(r.not_after),
                r.issuer,
                if r.hosts.is_empty() {
                    r.path.clone()
                } else {
                    r.hosts.join(", ")
                },
                r.reason
            ),
            _ => println!("kept   {:<24} {}", r.name, r.reason),
        }
    }
    Ok(())
}

fn issue_command(a: &IssueArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let (_, plan) = load_zone(&a.zone, file)?;
    let dir = CaDir(&a.zone.dir);
    let mut todo = Vec::new();
    let mut rows = Vec::new();
    for c in &plan.certificates {
        match dir.read_issued(&c.name) {
            None => todo.push((c, "not issued yet".to_owned())),
            Some(_) if a.force => todo.push((c, "--force".to_owned())),
            Some(_) => rows.push(kept(
                c,
                "(issued; --force or `pki renew` to replace)".into(),
                &dir,
            )),
        }
    }
    rows.extend(issue_some(&dir, &plan, &todo, a.days)?);
    print_issue_rows(&rows, json)?;
    if !json {
        println!(
            "each host's files: {}/<host>/ (copy onto the host's root)",
            dir.hosts().display()
        );
    }
    Ok(exit::OK)
}

fn renew(a: &RenewArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let (_, plan) = load_zone(&a.zone, file)?;
    let dir = CaDir(&a.zone.dir);
    // Checked against the CA that issues now: after a CA rollover's
    // `reissue`, a leaf of the old CA is renewed too.
    let ca_pem = files::read(&dir.ca_cert()).map_err(usage)?;
    let now = now();
    let mut todo = Vec::new();
    let mut rows = Vec::new();
    for c in &plan.certificates {
        let Some(i) = dir.read_issued(&c.name) else {
            todo.push((c, "not issued yet".to_owned()));
            continue;
        };
        let row = assess(
            &c.name,
            Some(c),
            &i.certificate_pem,
            Some(&i.private_key_pem),
            Against {
                ca_pem: &ca_pem,
                now,
                min_validity: a.within.as_secs() as i64,
            },
        );
        if row.problems.is_empty() {
            rows.push(kept(c, format!("{} left", days(row.remaining)), &dir));
        } else {
            todo.push((c, problem_text(&row.problems)));
        }
    }
    let issued = issue_some(&dir, &plan, &todo, a.days)?;
    let renewed = !issued.is_empty();
    rows.extend(issued);
    print_issue_rows(&rows, json)?;
    if renewed && !json {
        println!(
            "roll them out one host at a time (the old certificates stay valid until they expire): docs/runbooks/certificate-rotation.md"
        );
    }
    Ok(exit::OK)
}

/// One line of `pki check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRow {
    /// `ca` for a CA of the trust bundle, else the plan's name.
    pub name: String,
    pub path: String,
    pub subject: String,
    /// The CA of the trust bundle that issued it (its subject); none when
    /// no CA of the bundle did (a problem `not_signed_by_ca` says why).
    pub issued_by: Option<String>,
    pub not_after: i64,
    /// Seconds left (negative: expired).
    pub remaining: i64,
    pub status: &'static str,
    pub problems: Vec<Problem>,
}

/// What is wrong with a certificate, by kind (for scripts and tests) and in
/// words (for the operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Unreadable,
    Missing,
    /// Expired, not yet valid, or below the minimum validity.
    Validity,
    NotSignedByCa,
    KeyMismatch,
    /// CN or subject alternative names differ from the zone's plan.
    Names,
    KeyMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
}

impl Problem {
    fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The problems of a row, for one line of text.
fn problem_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What every certificate is checked against: the CA (PEM) and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Against<'a> {
    pub ca_pem: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Seconds of validity a certificate must have left.
    pub min_validity: i64,
}

impl CheckRow {
    fn failed(name: &str, path: String, status: &'static str, problem: Problem) -> CheckRow {
        CheckRow {
            name: name.into(),
            path,
            subject: String::new(),
            issued_by: None,
            not_after: 0,
            remaining: 0,
            status,
            problems: vec![problem],
        }
    }
}

/// Checks one certificate against the plan, its key, the CA and the clock.
/// Pure: the caller reads the files.
pub fn assess(
    name: &str,
    planned: Option<&Certificate>,
    cert_pem: &str,
    key_pem: Option<&str>,
    against: Against<'_>,
) -> CheckRow {
    let Against {
        ca_pem,
        now,
        min_validity,
    } = against;
    let mut problems = Vec::new();
    let facts = match inspect::parse_pem(cert_pem.as_bytes()) {
        Ok(f) => f,
        Err(e) => {
            let problem = Problem::new(ProblemKind::Unreadable, e);
            return CheckRow::failed(name, String::new(), "unreadable", problem);
        }
    };
    let expiry = Expiry::classify(facts.not_before, facts.not_after, now, min_validity);
    match expiry {
        Expiry::Valid { .. } => {}
        Expiry::BelowMinimum { remaining } => problems.push(Problem::new(
            ProblemKind::Validity,
            format!(
                "expires in {} (minimum {})",
                days(remaining),
                days(min_validity)
            ),
        )),
        Expiry::Expired { ago } => problems.push(Problem::new(
            ProblemKind::Validity,
            format!("expired {} ago", days(ago)),
        )),
        Expiry::NotYetValid { starts_in } => problems.push(Problem::new(
            ProblemKind::Validity,
            format!("not valid for another {}", days(starts_in)),
        )),
    }
    // The CA itself: a zone CA signs itself; an intermediate's chain ends
    // in the enterprise PKI, which is not here to check against.
    let intermediate = name == "ca" && facts.issuer != facts.subject;
    let mut issued_by = None;
    match inspect::signer_in(cert_pem, ca_pem) {
        Ok(signer) => issued_by = Some(signer.subject),
        Err(_) if intermediate => issued_by = Some(facts.issuer.clone()),
        Err(e) => problems.push(Problem::new(ProblemKind::NotSignedByCa, e)),
    }
    if let Some(key) = key_pem
        && let Err(e) = inspect::key_matches(cert_pem, key)
    {
        problems.push(Problem::new(ProblemKind::KeyMismatch, e));
    }
    if let Some(p) = planned {
        if facts.common_name.as_deref() != Some(p.common_name.as_str()) {
            problems.push(Problem::new(
                ProblemKind::Names,
                format!(
                    "CN is {:?}, the zone wants {}",
                    facts.common_name, p.common_name
                ),
            ));
        }
        let mut want_ip = p.ip_addresses.clone();
        let mut have_ip = facts.ip_addresses.clone();
        want_ip.sort();
        have_ip.sort();
        let mut want_dns = p.dns_names.clone();
        let mut have_dns = facts.dns_names.clone();
        want_dns.sort();
        have_dns.sort();
        if want_ip != have_ip || want_dns != have_dns {
            problems.push(Problem::new(
                ProblemKind::Names,
                format!(
                    "names {:?} {:?}, the zone wants {:?} {:?}",
                    have_dns, have_ip, want_dns, want_ip
                ),
            ));
        }
    }
    CheckRow {
        name: name.into(),
        path: String::new(),
        subject: facts.subject,
        issued_by,
        not_after: facts.not_after,
        remaining: facts.not_after - now,
        status: if problems.is_empty() {
            expiry.token()
        } else if expiry.is_usable() && !matches!(expiry, Expiry::BelowMinimum { .. }) {
            "wrong"
        } else {
            expiry.token()
        },
        problems,
    }
}

fn missing(name: &str, path: &Path) -> CheckRow {
    CheckRow::failed(
        name,
        path.display().to_string(),
        "missing",
        Problem::new(
            ProblemKind::Missing,
            format!("{}: no such file", path.display()),
        ),
    )
}

fn check_one(
    name: &str,
    planned: Option<&Certificate>,
    cert: &Path,
    key: Option<&Path>,
    against: Against<'_>,
) -> CheckRow {
    let Ok(cert_pem) = std::fs::read_to_string(cert) else {
        return missing(name, cert);
    };
    check_pem(name, planned, &cert_pem, cert, key, against)
}

/// Checks the certificate `cert_pem` (read from `cert`) and its key file.
fn check_pem(
    name: &str,
    planned: Option<&Certificate>,
    cert_pem: &str,
    cert: &Path,
    key: Option<&Path>,
    against: Against<'_>,
) -> CheckRow {
    let key_pem = match key.map(std::fs::read_to_string) {
        Some(Ok(k)) => Some(k),
        Some(Err(_)) => return missing(name, key.unwrap_or(cert)),
        None => None,
    };
    let mut row = assess(name, planned, cert_pem, key_pem.as_deref(), against);
    row.path = cert.display().to_string();
    if let Some(k) = key {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(k)
            && m.permissions().mode() & 0o077 != 0
        {
            row.problems.push(Problem::new(
                ProblemKind::KeyMode,
                format!(
                    "{} has mode {:o}: a private key must be 0600 or narrower",
                    k.display(),
                    m.permissions().mode() & 0o777
                ),
            ));
        }
    }
    row
}

/// A row per CA of the trust bundle at `path`, each checked like a
/// certificate (the issuing CA against its key `issuing_key`, when given:
/// `(its SHA-256, the key file)`).
fn check_bundle(
    path: &Path,
    issuing_key: Option<(&str, &Path)>,
    against: Against<'_>,
) -> Vec<CheckRow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![missing("ca", path)];
    };
    let cas = inspect::split_pem(&text).and_then(|cas| {
        if cas.is_empty() {
            Err("no PEM CERTIFICATE block".to_owned())
        } else {
            Ok(cas)
        }
    });
    let cas = match cas {
        Ok(cas) => cas,
        Err(e) => {
            let problem = Problem::new(ProblemKind::Unreadable, format!("{}: {e}", path.display()));
            return vec![CheckRow::failed(
                "ca",
                path.display().to_string(),
                "unreadable",
                problem,
            )];
        }
    };
    cas.iter()
        .map(|pem| {
            let key = issuing_key.and_then(|(sha, key)| {
                (inspect::sha256(pem.as_bytes()).ok().as_deref() == Some(sha)).then_some(key)
            });
            check_pem("ca", None, pem, path, key, against)
        })
        .collect()
}

fn check(a: &CheckArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let (zone, plan) = load_zone(&a.zone, file)?;
    let min = a
        .min_validity
        .unwrap_or_else(|| zone.min_validity())
        .as_secs() as i64;
    let now = now();
    let dir = CaDir(&a.zone.dir);
    let mut rows = Vec::new();
    let bundle_path;
    match &a.host {
        None => {
            bundle_path = if dir.bundle().exists() {
                dir.bundle()
            } else {
                dir.ca_cert()
            };
            let trust = std::fs::read_to_string(&bundle_path).unwrap_or_default();
            let against = Against {
                ca_pem: &trust,
                now,
                min_validity: min,
            };
            let issuing = std::fs::read_to_string(dir.ca_cert())
                .ok()
                .and_then(|pem| inspect::sha256(pem.as_bytes()).ok());
            let ca_key = dir.ca_key();
            let ca_rows = check_bundle(
                &bundle_path,
                issuing.as_deref().map(|sha| (sha, ca_key.as_path())),
                against,
            );
            if let Some(sha) = &issuing
                // An unreadable bundle has its own row from `check_bundle`.
                && inspect::split_pem(&trust).is_ok_and(|cas| {
                    !cas.iter()
                        .any(|pem| inspect::sha256(pem.as_bytes()).ok().as_ref() == Some(sha))
                })
            {
                rows.push(CheckRow::failed(
                    "ca",
                    dir.ca_cert().display().to_string(),
                    "wrong",
                    Problem::new(
                        ProblemKind::NotSignedByCa,
                        format!(
                            "the issuing CA {} is not in the trust bundle {}",
                            dir.ca_cert().display(),
                            bundle_path.display()
                        ),
                    ),
                ));
            }
            rows.extend(ca_rows);
            for c in &plan.certificates {
                rows.push(check_one(
                    &c.name,
                    Some(c),
                    &dir.cert(&c.name),
                    Some(&dir.key(&c.name)),
                    against,
                ));
            }
        }
        Some(host) => {
            let at = |p: &str| a.root.join(p.trim_start_matches('/'));
            let ca_install = plan
                .ca
                .installs
                .iter()
                .find(|i| &i.host == host)
                .ok_or_else(|| usage(format!("{host} is not a host of zone {}", plan.zone)))?;
            bundle_path = at(&ca_install.path);
            let trust = std::fs::read_to_string(&bundle_path).unwrap_or_default();
            let against = Against {
                ca_pem: &trust,
                now,
                min_validity: min,
            };
            rows.extend(check_bundle(&bundle_path, None, against));
            for c in &plan.certificates {
                for i in c.installs.iter().filter(|i| &i.host == host) {
                    rows.push(check_one(
                        &c.name,
                        Some(c),
                        &at(&i.certificate),
                        Some(&at(&i.private_key)),
                        against,
                    ));
                }
            }
        }
    }
    let failed = rows.iter().any(|r| !r.problems.is_empty());
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(usage)?);
    } else {
        let lines: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.subject.clone(),
                    if r.not_after == 0 {
                        "-".into()
                    } else {
                        date(r.not_after)
                    },
                    if r.not_after == 0 {
                        "-".into()
                    } else {
                        days(r.remaining)
                    },
                    r.issued_by.clone().unwrap_or_else(|| "-".into()),
                    r.status.to_owned(),
                    problem_text(&r.problems),
                ]
            })
            .collect();
        let cas: Vec<&str> = rows
            .iter()
            .filter(|r| r.name == "ca" && !r.subject.is_empty())
            .map(|r| r.subject.as_str())
            .collect();
        println!(
            "trust bundle {}: {} CA{} ({})",
            bundle_path.display(),
            cas.len(),
            if cas.len() == 1 { "" } else { "s" },
            cas.join(", ")
        );
        if a.host.is_none()
            && let Some(r) = rollover::read_state(&dir)?
        {
            println!(
                "CA rollover in progress: phase {}, next step `{}`",
                r.phase.token(),
                r.phase.next().command()
            );
        }
        print!(
            "{}",
            table::render(
                &[
                    "CERTIFICATE",
                    "SUBJECT",
                    "NOT AFTER",
                    "LEFT",
                    "ISSUED BY",
                    "STATUS",
                    "PROBLEM"
                ],
                &lines
            )
        );
    }
    Ok(if failed { exit::FAILED } else { exit::OK })
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| unix.to_string())
}

fn days(secs: i64) -> String {
    let d = secs.abs() / 86_400;
    if d > 0 {
        format!("{d}d")
    } else {
        format!("{}h", secs.abs() / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bsfg_pki::{LeafRequest, Usage};

    fn against(ca_pem: &str, now: i64, min_validity: i64) -> Against<'_> {
        Against {
            ca_pem,
            now,
            min_validity,
        }
    }

    fn planned() -> Certificate {
        Certificate {
            name: "controller".into(),
            common_name: "plant-a-bsfg".into(),
            dns_names: vec!["plant-a-bsfg".into()],
            ip_addresses: vec!["10.20.0.100".parse().unwrap()],
            usage: Usage::ServerAndClient,
            installs: vec![],
        }
    }

    #[test]
    fn assess_names_each_problem() {
        let ca = Authority::generate("plant-a zone CA", Validity::days_from_now(3650)).unwrap();
        let c = planned();
        let ok = ca
            .issue(&c.request(), Validity::days_from_now(365))
            .unwrap();
        let now = super::now();
        let r = assess(
            "controller",
            Some(&c),
            &ok.certificate_pem,
            Some(&ok.private_key_pem),
            against(ca.certificate_pem(), now, 30 * 86_400),
        );
        assert_eq!((r.status, r.problems.clone()), ("valid", vec![]), "{r:?}");

        let r = assess(
            "controller",
            Some(&c),
            &ok.certificate_pem,
            Some(&ok.private_key_pem),
            against(ca.certificate_pem(), now + 350 * 86_400, 30 * 86_400),
        );
        assert_eq!(r.status, "below_minimum");
        assert_eq!(r.problems[0].kind, ProblemKind::Validity, "{r:?}");
        // The operator's text states the time left.
        assert!(r.problems[0].detail.starts_with("expires in 15d"), "{r:?}");

        let foreign = Authority::generate("foreign", Validity::days_from_now(10)).unwrap();
        let r = assess(
            "controller",
            Some(&c),
            &ok.certificate_pem,
            None,
            against(foreign.certificate_pem(), now, 0),
        );
        assert_eq!(r.problems[0].kind, ProblemKind::NotSignedByCa, "{r:?}");

        let other = ca
            .issue(&c.request(), Validity::days_from_now(365))
            .unwrap();
        let r = assess(
            "controller",
            Some(&c),
            &ok.certificate_pem,
            Some(&other.private_key_pem),
            against(ca.certificate_pem(), now, 0),
        );
        assert_eq!(r.problems[0].kind, ProblemKind::KeyMismatch, "{r:?}");

        let mut wrong = c.request();
        wrong.ip_addresses.clear();
        let w = ca
            .issue(&LeafRequest { ..wrong }, Validity::days_from_now(365))
            .unwrap();
        let r = assess(
            "controller",
            Some(&c),
            &w.certificate_pem,
            None,
            against(ca.certificate_pem(), now, 0),
        );
        assert_eq!(r.status, "wrong");
        assert_eq!(r.problems[0].kind, ProblemKind::Names, "{r:?}");

        let r = assess(
            "controller",
            Some(&c),
            &ok.certificate_pem,
            None,
            against(ca.certificate_pem(), now + 400 * 86_400, 0),
        );
        assert_eq!(r.status, "expired");
    }
}
