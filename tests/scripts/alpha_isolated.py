# Scenario 4, alpha isolated (simulator drill: alpha-isolated). Alpha loses
# quorum and demotes (no controller, no VIP); beta promotes. After the
# network heals alpha stays standby: no automatic failback.

bring_up_zone()

with single_controller:
    acked = append_many("before-isolation", 10)

    with subtest("alpha isolated: alpha demotes, beta promotes"):
        alpha.block()
        wait_serving(beta)
        alpha.wait_until_fails(serving_cmd(alpha), timeout=PROMOTION_TIMEOUT)
        alpha.wait_until_fails(has_vip_cmd(), timeout=PROMOTION_TIMEOUT)
        acked += append_many("isolated", 5)

    with subtest("network heals: alpha stays standby (no automatic failback)"):
        alpha.unblock()
        alpha.wait_until_succeeds(jetstream_cluster_cmd(alpha), timeout=PROMOTION_TIMEOUT)
        # Give VRRP (0.2 s adverts) and the agents ample time to do the wrong thing.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert is_serving(beta) and not is_serving(alpha), "the controller moved back to alpha"
            assert has_vip(beta) and not has_vip(alpha), "the VIP moved back to alpha"
            time.sleep(1)
        acked += append_many("healed", 5)
        assert_all_present_once(acked)
