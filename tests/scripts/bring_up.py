# Scenario 1, bring-up (mirrors the simulator's zone bring-up that every
# drill starts from): NATS cluster with 3 voters, VIP on alpha, controller
# active on alpha only, inactive on beta, absent on gamma; the controller
# listens on the VIP only; our units' systemd exposure stays under a bound.

# systemd-analyze security exposure (0 = fully confined, 10 = unconfined).
# The controller needs TCP from anywhere on the VIP, so PrivateNetwork and
# IPAddressDeny are impossible; everything else is locked down: <= 3.0.
# The gate agent additionally needs AF_NETLINK, D-Bus and write access to
# its runtime directory and /artifacts: <= 4.5. Both are far below the
# 9.6 "UNSAFE" of an unhardened service.
EXPOSURE_LIMITS = {CONTROLLER_UNIT: 3.0, AGENT_UNIT: 4.5}

with subtest("zone boots and JetStream forms a 3-voter cluster"):
    start_all()
    wait_for_zone()
    for m in ZONE_HOSTS:
        jsz = json.loads(m.succeed(f"curl -sf http://{mgmt(m)}:{PORTS['natsMonitor']}/jsz"))
        assert jsz["meta_cluster"]["cluster_size"] == 3, jsz["meta_cluster"]

with single_controller:
    with subtest("VIP and controller on alpha only"):
        wait_serving(alpha)
        assert has_vip(alpha) and not has_vip(beta) and not has_vip(gamma)
        beta.fail(f"systemctl is-active --quiet {CONTROLLER_UNIT}")
        assert not is_serving(beta)

    with subtest("gamma has no controller, no gate agent, no keepalived, no /artifacts"):
        for unit in [CONTROLLER_UNIT, AGENT_UNIT, "keepalived.service"]:
            gamma.fail(f"systemctl cat {unit}")
        gamma.fail("test -e /artifacts")

    with subtest("the controller listens on the VIP only, never on a wildcard"):
        port = PORTS["controller"]
        listeners = alpha.succeed(f"ss -Htln 'sport = :{port}'")
        print(listeners)
        assert f"{VIP}:{port}" in listeners, listeners
        for wildcard in [f"0.0.0.0:{port}", f"*:{port}", f"[::]:{port}"]:
            assert wildcard not in listeners, f"controller bound {wildcard}"
        assert beta.succeed(f"ss -Htln 'sport = :{port}'").strip() == ""

    with subtest("the NATS client port is on localhost only"):
        listeners = gamma.succeed(f"ss -Htln 'sport = :{PORTS['natsClient']}'")
        assert f"127.0.0.1:{PORTS['natsClient']}" in listeners and "0.0.0.0" not in listeners, listeners

    with subtest("the client appends through the VIP; retries do not duplicate"):
        acked = append_many("bring-up", 5)
        # The same message ids again: acknowledged as duplicates, not stored twice.
        for message_id in acked:
            append(message_id)
        assert_all_present_once(acked)

    with subtest("systemd exposure of our units"):
        for unit, limit in EXPOSURE_LIMITS.items():
            out = alpha.succeed(f"systemd-analyze security --no-pager {unit} | tail -n 1")
            # "→ Overall exposure level for bsfg-controller.service: 2.1 OK 🙂"
            level = float(out.split(":")[1].split()[0])
            print(f"{unit}: exposure {level} (limit {limit})")
            assert level <= limit, f"{unit} exposure {level} > {limit}"
