# Scenario 3, gamma crash (simulator drill: gamma-crash). JetStream keeps
# quorum with alpha and beta; no role change; appends keep succeeding.

bring_up_zone()

with single_controller:
    acked = append_many("before-gamma-crash", 5)

    with subtest("gamma crashes: no role change, appends keep succeeding"):
        gamma.crash()
        # R3 streams keep a 2-of-3 majority: each append must still be
        # acknowledged quickly, without a failover.
        acked += append_many("gamma-down", 10, timeout=60)
        assert is_serving(alpha) and not is_serving(beta)
        assert has_vip(alpha) and not has_vip(beta)

    with subtest("gamma returns and rejoins; still no role change"):
        gamma.start()
        wait_for_zone([gamma])
        acked += append_many("gamma-back", 5, timeout=60)
        assert is_serving(alpha) and not is_serving(beta)
        assert_all_present_once(acked)
