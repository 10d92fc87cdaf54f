//! `commission --drill`: a controlled failover to the standby and a
//! failback, driven by the handover command (default: restart the active
//! host's gate agent over ssh, which stops the controller and releases the
//! VIP; the agent rejoins as standby after its hold-down).

use super::checklist::{Item, Verdict};
use crate::cli::CommissionArgs;
use crate::identity::ConfigFile;
use crate::zone::snapshot::Snapshot;
use bsfg_mgmt::Role;
use std::time::{Duration, Instant};

pub const FAILOVER: &str = "failover";
pub const FAILOVER_TITLE: &str = "controlled failover to the standby";
pub const FAILBACK: &str = "failback";
pub const FAILBACK_TITLE: &str = "manual failback to the original host";
/// The drill runs only on a zone that passes these.
pub const PRECONDITIONS: &[&str] = &[
    "hosts-reachable",
    "vip-single-holder",
    "controller-placement",
    "jetstream-quorum",
];

/// `{host}`, `{address}`, `{management}` replaced (pure: tested directly).
pub fn render_command(template: &str, host: &str, address: &str, management: &str) -> String {
    template
        .replace("{host}", host)
        .replace("{address}", address)
        .replace("{management}", management)
}

/// Settled: exactly `host` holds the VIP and serves, and the other service
/// host's agent is a standby again (so it could take over).
pub fn settled_on(s: &Snapshot, host: &str) -> bool {
    let holders = s.vip_holders();
    let serving = s.serving_hosts();
    let others_standby = s
        .hosts
        .iter()
        .filter(|h| h.name != host && h.agent.is_some())
        .all(|h| h.agent_ok().is_some_and(|a| a.role == Role::Standby) && !h.controller_running());
    holders == [host] && serving == [host] && others_standby
}

async fn hand_over(
    a: &CommissionArgs,
    file: &ConfigFile,
    from: &str,
    to: &str,
    id: &'static str,
    title: &'static str,
) -> Item {
    let zone = match crate::zone::ZoneFile::load_required(a.zone.zone_file.as_deref(), file) {
        Ok(z) => z,
        Err(e) => {
            return Item {
                id,
                title,
                verdict: Verdict::Fail,
                evidence: vec![e.to_string()],
            };
        }
    };
    let h = &zone.hosts[from];
    let cmd = render_command(&a.handover_command, from, &h.address, &h.management_address);
    let started = Instant::now();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .output()
        .await;
    let mut ev = vec![format!("ran `{cmd}`")];
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            ev.push(format!(
                "exit {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return Item {
                id,
                title,
                verdict: Verdict::Fail,
                evidence: ev,
            };
        }
        Err(e) => {
            ev.push(format!("could not run sh: {e}"));
            return Item {
                id,
                title,
                verdict: Verdict::Fail,
                evidence: ev,
            };
        }
    }
    let mut served_after: Option<Duration> = None;
    let deadline = started + a.drill_timeout;
    loop {
        let snap = crate::zone::collect::snapshot(&zone, None, a.zone.timeout).await;
        if served_after.is_none()
            && snap.host(to).is_some_and(|h| h.controller_serving())
            && snap.vip_holders() == [to]
        {
            served_after = Some(started.elapsed());
        }
        if settled_on(&snap, to) {
            ev.push(format!(
                "{to} holds the VIP and serves {} ms after the handover started; {from} is standby again after {} ms",
                served_after.unwrap_or_default().as_millis(),
                started.elapsed().as_millis()
            ));
            return Item {
                id,
                title,
                verdict: Verdict::Pass,
                evidence: ev,
            };
        }
        if Instant::now() > deadline {
            let view = crate::zone::status::evaluate(&snap, bsfg_core::clock::unix_ms());
            ev.push(format!(
                "not settled on {to} within {}: VIP on [{}], problems: {}",
                humantime::format_duration(a.drill_timeout),
                view.vip_holders.join(", "),
                view.problems.join("; ")
            ));
            return Item {
                id,
                title,
                verdict: Verdict::Fail,
                evidence: ev,
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn run(a: &CommissionArgs, file: &ConfigFile) -> Vec<Item> {
    let zone = match crate::zone::ZoneFile::load_required(a.zone.zone_file.as_deref(), file) {
        Ok(z) => z,
        Err(e) => {
            return vec![Item {
                id: FAILOVER,
                title: FAILOVER_TITLE,
                verdict: Verdict::Fail,
                evidence: vec![e.to_string()],
            }];
        }
    };
    let snap = crate::zone::collect::snapshot(&zone, None, a.zone.timeout).await;
    let Some(active) = snap.vip_holders().first().map(|s| s.to_string()) else {
        return vec![Item {
            id: FAILOVER,
            title: FAILOVER_TITLE,
            verdict: Verdict::Fail,
            evidence: vec!["no VIP holder".into()],
        }];
    };
    let Some(standby) = zone.service_hosts().into_iter().find(|h| h != &active) else {
        return vec![Item {
            id: FAILOVER,
            title: FAILOVER_TITLE,
            verdict: Verdict::Fail,
            evidence: vec!["no standby".into()],
        }];
    };
    let over = hand_over(a, file, &active, &standby, FAILOVER, FAILOVER_TITLE).await;
    if over.verdict != Verdict::Pass {
        return vec![
            over,
            Item {
                id: FAILBACK,
                title: FAILBACK_TITLE,
                verdict: Verdict::Fail,
                evidence: vec!["not attempted: the failover failed".into()],
            },
        ];
    }
    let back = hand_over(a, file, &standby, &active, FAILBACK, FAILBACK_TITLE).await;
    vec![over, back]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_templates_name_the_host() {
        assert_eq!(
            render_command(
                "ssh root@{management} systemctl restart bsfg-gate-agent.service # {host} {address}",
                "alpha",
                "10.20.0.11",
                "10.30.0.11"
            ),
            "ssh root@10.30.0.11 systemctl restart bsfg-gate-agent.service # alpha 10.20.0.11"
        );
    }
}
