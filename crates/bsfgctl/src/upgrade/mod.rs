//! `upgrade plan` and `upgrade check`: the rolling order of a zone upgrade
//! (gamma, the standby, a planned handover, the old active) and whether the
//! next step may be taken now. Both are pure functions of the snapshot
//! `zone status` collects; only [`command`] does I/O.

#[cfg(test)]
mod tests;

use crate::cli::UpgradeCommand;
use crate::commission::checklist::{self, Item, Verdict};
use crate::exit::{self, Result};
use crate::identity::ConfigFile;
use crate::zone::snapshot::Snapshot;
use crate::zone::status::{self, ZoneView};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `nixos-rebuild switch` of one host (nats-server stops in lame-duck mode).
    Rebuild,
    /// Restart the active host's gate agent: it stops the controller and
    /// releases the VIP, and the standby takes over.
    Handover,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub number: usize,
    pub host: String,
    pub action: Action,
    pub command: String,
    /// What `upgrade check` (or `zone status`) must show before the next step.
    pub then: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub zone: String,
    pub active: String,
    pub standby: String,
    pub gamma: String,
    pub steps: Vec<Step>,
    /// Why the plan assumed something (no single VIP holder).
    pub notes: Vec<String>,
}

/// The rolling order. The active host is the VIP holder; without exactly
/// one, alpha is assumed and a note says so (`upgrade check` then refuses).
pub fn plan(s: &Snapshot) -> Plan {
    let by_role = |role: &str| {
        s.zone
            .hosts
            .iter()
            .find(|(_, h)| h.role == role)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| role.to_owned())
    };
    let (alpha, beta, gamma) = (by_role("alpha"), by_role("beta"), by_role("gamma"));
    let mut notes = Vec::new();
    let holders = s.vip_holders();
    let active = match holders.as_slice() {
        [one] => (*one).to_owned(),
        _ => {
            notes.push(format!(
                "the VIP is on {} hosts; assumed {alpha} is active (run bsfgctl upgrade check first)",
                holders.len()
            ));
            alpha.clone()
        }
    };
    let standby = if active == alpha { beta } else { alpha };
    let management = |host: &str| {
        s.zone
            .hosts
            .get(host)
            .map_or_else(|| host.to_owned(), |h| h.management_address.clone())
    };
    let rebuild = |number, host: &str, then: String| Step {
        number,
        host: host.to_owned(),
        action: Action::Rebuild,
        command: format!(
            "nixos-rebuild switch --flake .#{host} --target-host root@{}",
            management(host)
        ),
        then,
    };
    let caught_up = "healthy, JetStream current and every stream replica caught up";
    let steps = vec![
        rebuild(1, &gamma, format!("{gamma} {caught_up}")),
        rebuild(
            2,
            &standby,
            format!("{standby} {caught_up}, standby with every health gate passing"),
        ),
        Step {
            number: 3,
            host: active.clone(),
            action: Action::Handover,
            command: format!(
                "ssh root@{} systemctl restart bsfg-gate-agent.service",
                management(&active)
            ),
            then: format!("{standby} holds the VIP and serves; {active} is standby again"),
        },
        rebuild(4, &active, format!("{active} {caught_up}, standby again")),
    ];
    Plan {
        zone: s.zone.zone.clone(),
        active,
        standby,
        gamma,
        steps,
        notes,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Whether any step of the plan may be taken now.
    pub safe: bool,
    /// Why not (empty when safe).
    pub blockers: Vec<String>,
    /// The checks it decided on, each with its evidence.
    pub checks: Vec<Item>,
}

/// Whether taking one host down (a rebuild or a handover) keeps the zone
/// serving now: every voter and stream replica current, so the two that
/// stay keep quorum; exactly one controller serving; the standby ready to
/// take over; `zone status` without problems.
pub fn check(s: &Snapshot, view: &ZoneView) -> Check {
    let plan = plan(s);
    let mut checks = vec![
        checklist::hosts_reachable(s),
        checklist::jetstream_quorum(s),
        checklist::jetstream_voters(s),
        checklist::streams_replicated(s),
        checklist::vip_single_holder(s),
        checklist::controller_placement(s),
        standby_ready(view, &plan),
    ];
    // Alpha and Beta run different builds from the standby's rebuild until
    // the old active's: the upgrade itself, not a reason to stop it.
    let skew = status::differing_builds(&view.hosts);
    let zone_problems: Vec<String> = view
        .problems
        .iter()
        .filter(|p| Some(*p) != skew.as_ref())
        .cloned()
        .collect();
    let mut evidence = vec!["zone status: no problems".to_owned()];
    if let Some(skew) = skew {
        evidence.push(format!("{skew} (expected until the upgrade is finished)"));
    }
    checks.push(Item::new(
        "zone-status",
        "zone status reports no problem (but the upgrade's own build skew)",
        zone_problems,
        evidence,
    ));
    let blockers = checks
        .iter()
        .filter(|i| i.verdict != Verdict::Pass)
        .map(|i| {
            format!(
                "{}: {}",
                i.id,
                i.evidence.first().map_or("failed", String::as_str)
            )
        })
        .collect::<Vec<_>>();
    Check {
        safe: blockers.is_empty(),
        blockers,
        checks,
    }
}

/// The standby can take over: its agent answers, is standby, and every
/// health gate passes (the same condition `zone status` warns on).
fn standby_ready(view: &ZoneView, plan: &Plan) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    match view.hosts.iter().find(|h| h.name == plan.standby) {
        None => fail.push(format!("{} is not in the zone", plan.standby)),
        Some(h) => {
            match h.agent_role {
                Some(bsfg_mgmt::Role::Standby) => {
                    ev.push(format!("{} is standby", h.name));
                }
                Some(r) => fail.push(format!("{} is {r}, not standby", h.name)),
                None => fail.push(format!("{}: gate agent does not answer", h.name)),
            }
            if h.failing_health.is_empty() {
                ev.push(format!("{}: every health gate passes", h.name));
            } else {
                fail.push(format!(
                    "{} could not take over: {}",
                    h.name,
                    h.failing_gates.join("; ")
                ));
            }
        }
    }
    Item::new("standby-ready", "the standby could take over", fail, ev)
}

pub fn render_plan(p: &Plan) -> String {
    let mut out = format!(
        "zone {}: active {}, standby {}, gamma {}\n",
        p.zone, p.active, p.standby, p.gamma
    );
    for n in &p.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    for s in &p.steps {
        let what = match s.action {
            Action::Rebuild => format!("upgrade {}", s.host),
            Action::Handover => format!("hand over from {}", s.host),
        };
        out.push_str(&format!(
            "\n{}. {what}  (first: bsfgctl upgrade check)\n   {}\n   then wait until: {}\n",
            s.number, s.command, s.then
        ));
    }
    out.push_str(
        "\nRollback: the same order, each host with nixos-rebuild switch --rollback (docs/runbooks/upgrade.md).\n",
    );
    out
}

pub fn render_check(c: &Check) -> String {
    let mut out = String::new();
    for i in &c.checks {
        let v = match i.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIP",
        };
        out.push_str(&format!("{v}  {:<18} {}\n", i.id, i.title));
        if i.verdict != Verdict::Pass {
            for e in &i.evidence {
                out.push_str(&format!("      {e}\n"));
            }
        }
    }
    if c.safe {
        out.push_str("safe: the next step of bsfgctl upgrade plan may run now\n");
    } else {
        out.push_str(&format!(
            "NOT safe now ({} blocking); wait, or fix: {}\n",
            c.blockers.len(),
            c.blockers.join("; ")
        ));
    }
    out
}

pub async fn command(c: &UpgradeCommand, file: &ConfigFile, json: bool) -> Result<u8> {
    let (UpgradeCommand::Plan(zone) | UpgradeCommand::Check(zone)) = c;
    let snap = crate::zone::observe(zone, file).await?;
    match c {
        UpgradeCommand::Plan(_) => {
            let p = plan(&snap);
            if json {
                crate::commands::print_json(&p);
            } else {
                print!("{}", render_plan(&p));
            }
            Ok(exit::OK)
        }
        UpgradeCommand::Check(_) => {
            let view = status::evaluate(&snap, bsfg_core::clock::unix_ms());
            let c = check(&snap, &view);
            if json {
                crate::commands::print_json(&c);
            } else {
                print!("{}", render_check(&c));
            }
            Ok(if c.safe { exit::OK } else { exit::FAILED })
        }
    }
}
