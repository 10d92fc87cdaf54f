//! Plan and check on hand-built snapshots (the commissioning fixtures): a
//! healthy zone is safe to step, and each fault that would cost quorum or
//! an unplanned failover blocks with its reason.

use super::*;
use crate::commission::tests::{NOW, agent_mut, healthy, host_mut, with_another_controller_build};
use bsfg_mgmt::agent::{GateId, Role};

fn check_of(s: &Snapshot) -> Check {
    check(s, &status::evaluate(s, NOW))
}

fn blocking(c: &Check) -> Vec<&'static str> {
    c.checks
        .iter()
        .filter(|i| i.verdict != Verdict::Pass)
        .map(|i| i.id)
        .collect()
}

#[test]
fn the_plan_upgrades_gamma_then_the_standby_hands_over_then_the_old_active() {
    let p = plan(&healthy());
    assert_eq!((p.active.as_str(), p.standby.as_str()), ("alpha", "beta"));
    let order: Vec<(&str, Action)> = p
        .steps
        .iter()
        .map(|s| (s.host.as_str(), s.action))
        .collect();
    assert_eq!(
        order,
        vec![
            ("gamma", Action::Rebuild),
            ("beta", Action::Rebuild),
            ("alpha", Action::Handover),
            ("alpha", Action::Rebuild),
        ]
    );
    let gamma = &healthy().zone.hosts["gamma"].management_address;
    assert_eq!(
        p.steps[0].command,
        format!("nixos-rebuild switch --flake .#gamma --target-host root@{gamma}")
    );
    assert!(
        p.steps[2]
            .command
            .ends_with("systemctl restart bsfg-gate-agent.service")
    );
    assert!(p.notes.is_empty());
    let text = render_plan(&p);
    assert!(text.contains("3. hand over from alpha"), "{text}");
    assert!(text.contains("--rollback"), "{text}");
}

#[test]
fn with_beta_active_the_plan_upgrades_alpha_first() {
    let mut s = healthy();
    agent_mut(&mut s, "alpha").gates[0].verdict = bsfg_mgmt::Verdict::Fail;
    agent_mut(&mut s, "beta").gates[0].verdict = bsfg_mgmt::Verdict::Pass;
    let p = plan(&s);
    assert_eq!((p.active.as_str(), p.standby.as_str()), ("beta", "alpha"));
    assert_eq!(p.steps[1].host, "alpha");
    assert_eq!(p.steps[3].host, "beta");
}

#[test]
fn without_a_single_vip_holder_the_plan_says_what_it_assumed() {
    let mut s = healthy();
    agent_mut(&mut s, "beta").gates[0].verdict = bsfg_mgmt::Verdict::Pass;
    let p = plan(&s);
    assert_eq!(p.active, "alpha");
    assert!(
        p.notes[0].contains("the VIP is on 2 hosts"),
        "{:?}",
        p.notes
    );
}

#[test]
fn a_healthy_zone_is_safe_to_step() {
    let c = check_of(&healthy());
    assert!(c.safe, "{:?}", c.blockers);
    assert!(c.blockers.is_empty());
    assert!(render_check(&c).ends_with("may run now\n"));
}

#[test]
fn an_unreachable_host_blocks_quorum() {
    let mut s = healthy();
    host_mut(&mut s, "gamma").varz = Err("connection refused".into());
    host_mut(&mut s, "gamma").jsz = Err("connection refused".into());
    let c = check_of(&s);
    assert!(!c.safe);
    let b = blocking(&c);
    assert!(b.contains(&"hosts-reachable"), "{b:?}");
    assert!(render_check(&c).contains("NOT safe now"));
}

#[test]
fn a_lagging_replica_blocks_until_it_is_current() {
    let mut s = healthy();
    for h in &mut s.hosts {
        let j = h.jsz.as_mut().unwrap();
        for st in &mut j.account_details[0].stream_detail {
            if let Some(c) = st.cluster.as_mut() {
                for r in &mut c.replicas {
                    r.current = false;
                }
            }
        }
    }
    let c = check_of(&s);
    assert!(!c.safe);
    assert!(blocking(&c).contains(&"streams-r3"), "{:?}", blocking(&c));
}

#[test]
fn a_standby_that_could_not_take_over_blocks() {
    let mut s = healthy();
    let beta = agent_mut(&mut s, "beta");
    let g = beta
        .gates
        .iter_mut()
        .find(|g| g.gate == GateId::Artifacts)
        .unwrap();
    g.verdict = bsfg_mgmt::Verdict::Fail;
    g.reason = "/artifacts is not a mount point".into();
    let c = check_of(&s);
    assert!(!c.safe);
    assert!(
        blocking(&c).contains(&"standby-ready"),
        "{:?}",
        blocking(&c)
    );
    assert!(
        c.blockers
            .iter()
            .any(|b| b.contains("/artifacts is not a mount point")),
        "{:?}",
        c.blockers
    );
}

#[test]
fn a_standby_still_promoting_blocks() {
    let mut s = healthy();
    agent_mut(&mut s, "beta").role = Role::Promoting;
    let c = check_of(&s);
    assert!(!c.safe);
    assert!(
        c.blockers
            .iter()
            .any(|b| b.contains("beta is promoting, not standby")),
        "{:?}",
        c.blockers
    );
}

#[test]
fn check_and_plan_serialize_for_json() {
    let c = serde_json::to_value(check_of(&healthy())).unwrap();
    assert_eq!(c["safe"], true);
    assert_eq!(c["checks"][0]["id"], "hosts-reachable");
    let p = serde_json::to_value(plan(&healthy())).unwrap();
    assert_eq!(p["steps"][2]["action"], "handover");
}

#[test]
fn the_upgrades_own_build_skew_does_not_block_the_next_step() {
    let mut s = healthy();
    with_another_controller_build(&mut s, "beta");
    let view = status::evaluate(&s, NOW);
    assert!(
        view.problems
            .iter()
            .any(|p| p.starts_with("alpha and beta run different controller builds")),
        "zone status still reports the skew: {:?}",
        view.problems
    );
    let c = check(&s, &view);
    assert!(c.safe, "{:?}", c.blockers);
    let item = c.checks.iter().find(|i| i.id == "zone-status").unwrap();
    assert!(
        item.evidence
            .iter()
            .any(|e| e.contains("expected until the upgrade is finished")),
        "{:?}",
        item.evidence
    );
    // Any other problem still blocks.
    agent_mut(&mut s, "beta").role = Role::Promoting;
    assert!(!check_of(&s).safe);
}
