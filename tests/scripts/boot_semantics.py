# Scenario 6, boot semantics (mirrors the simulator's zone start in every
# drill, and the "whatever the boot order" rule of the seed's Bootstrap
# Semantics). The controller is not wanted by anything; after a full zone
# power cycle it starts only through the gate agent, once the gates hold,
# whatever the order in which the hosts come back.


def exactly_one_serving_on_vip_holder():
    active = serving_hosts()
    assert len(active) == 1, f"expected one active controller, got {active}"
    holder = alpha if active == ["alpha"] else beta
    assert has_vip(holder), f"{holder.name} serves without holding the VIP"


def power_cycle_zone():
    for m in ZONE_HOSTS:
        m.crash()


bring_up_zone()

with subtest("the controller unit is wanted by nothing"):
    for m in SERVICE_HOSTS:
        deps = m.succeed(f"systemctl show -p WantedBy -p RequiredBy -p UpheldBy --value {CONTROLLER_UNIT}")
        assert deps.strip() == "", f"{m.name}: {CONTROLLER_UNIT} is pulled in by: {deps}"
        state = m.succeed(f"systemctl is-enabled {CONTROLLER_UNIT} || true").strip()
        assert state in ("static", "disabled"), f"{m.name}: {CONTROLLER_UNIT} is {state}"

with single_controller:
    with subtest("power cycle, beta first, alone: no controller without quorum"):
        power_cycle_zone()
        beta.start()
        beta.wait_for_unit(AGENT_UNIT, timeout=BOOT_TIMEOUT)
        assert_not_serving_for([beta], 30)

    with subtest("gamma next: quorum, and the controller starts through the agent"):
        gamma.start()
        wait_for_zone([beta, gamma], all_voters=False)
        wait_serving(beta)
        # The start came from the agent: the controller entered service only
        # after the agent was running (nothing else may start it).
        agent_up = int(beta.succeed(f"systemctl show -p ActiveEnterTimestampMonotonic --value {AGENT_UNIT}"))
        ctl_up = int(beta.succeed(f"systemctl show -p InactiveExitTimestampMonotonic --value {CONTROLLER_UNIT}"))
        assert agent_up < ctl_up, "the controller started before the gate agent"

    with subtest("alpha last: it joins as standby"):
        alpha.start()
        wait_for_zone([alpha])
        assert_not_serving_for([alpha], 15)
        exactly_one_serving_on_vip_holder()

    with subtest("power cycle, all at once: one controller, on the VIP holder"):
        power_cycle_zone()
        start_all()
        wait_for_zone()
        # Whichever service host wins the first election promotes; wait for it.
        deadline = time.monotonic() + PROMOTION_TIMEOUT
        while not serving_hosts() and time.monotonic() < deadline:
            time.sleep(1)
        exactly_one_serving_on_vip_holder()
        append("after-power-cycle")
