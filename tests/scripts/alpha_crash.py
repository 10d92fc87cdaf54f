# Scenario 2, alpha crash (simulator drill: alpha-crash). The VIP and the
# controller move to beta; every fact acknowledged before the crash is still
# fetchable; time from crash to the first acknowledged append is printed.

bring_up_zone()

with single_controller:
    with subtest("facts acknowledged before the crash"):
        acked = append_many("before-crash", 20)

    with subtest("alpha crashes: VIP and controller move to beta"):
        crashed_at = time.monotonic()
        alpha.crash()
        append("after-crash-0", timeout=PROMOTION_TIMEOUT)
        failover = time.monotonic() - crashed_at
        print(f"crash to first acknowledged append: {failover:.1f} s")
        acked.append("after-crash-0")
        wait_serving(beta)
        assert has_vip(beta)

    with subtest("every acknowledged fact is still there, exactly once"):
        acked += append_many("after-crash", 5)
        assert_all_present_once(acked)
