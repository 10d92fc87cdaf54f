# Helpers shared by every Triad VM test scenario.
#
# The test driver concatenates: generated constants (ZONE, from tests/zone.nix
# through the zone library), this file, then tests/scripts/<scenario>.py. The
# driver provides the machines (alpha, beta, gamma, client) and start_all,
# subtest, polling_condition.
#
# APPEND_CMD uses exactly the flags crates/bsfgctl/tests/client.rs runs
# (`--from-zone` is required: envelope.from_zone); AGENT_STATUS_CMD's table
# (`bsfg-gate-agent status`) names every gate with its reason.
# Reading facts back uses the Connect protocol's JSON form with curl, which
# the contract (sections 4 and 10) makes normative, so it needs no CLI.

import time
from typing import ContextManager, cast

VIP = ZONE["vip"]
PORTS = ZONE["ports"]
SERVICE_HOSTS = [alpha, beta]
ZONE_HOSTS = [alpha, beta, gamma]
CONTROLLER_UNIT = "bsfg-controller.service"
AGENT_UNIT = "bsfg-gate-agent.service"

# Timeouts are generous on purpose: without KVM the VMs are 5-10x slower.
PROMOTION_TIMEOUT = 300
BOOT_TIMEOUT = 600

PKI = "/etc/test-pki"
ENDPOINT = f"https://{VIP}:{PORTS['controller']}"
TLS_ARGS = f"--cert {PKI}/producer.pem --key {PKI}/producer.key --ca {PKI}/ca.pem"
CURL_TLS = f"--cacert {PKI}/ca.pem --cert {PKI}/producer.pem --key {PKI}/producer.key"

APPEND_CMD = (
    "bsfgctl append --endpoint {endpoint} {tls} --class operational --from-zone " + ZONE["zone"] + " "
    "--message-id {message_id} --subject order:line-1/{message_id} "
    "--predicate created --object-json '{{\"n\": \"{message_id}\"}}'"
)
AGENT_STATUS_CMD = "bsfg-gate-agent status --config /etc/bsfg/gate-agent.toml"


def mgmt(machine):
    return ZONE["hosts"][machine.name]["managementAddress"]


# ---------------------------------------------------------------- observations


def serving_cmd(machine):
    # "Serving" = the unit is active (READY=1 sent after binding the VIP and
    # connecting to JetStream) AND the controller reports ready, which it
    # stops doing the moment it self-fences on a lost lease.
    return (
        f"systemctl is-active --quiet {CONTROLLER_UNIT} && "
        f"curl -sf --max-time 2 http://{mgmt(machine)}:{PORTS['controllerManagement']}/readyz"
    )


def is_serving(machine):
    if not machine.booted:
        return False
    status, _ = machine.execute(serving_cmd(machine), timeout=20)
    return status == 0


def has_vip_cmd():
    return f"ip -4 -o addr show | grep -qF ' {VIP}/'"


def has_vip(machine):
    if not machine.booted:
        return False
    status, _ = machine.execute(has_vip_cmd(), timeout=20)
    return status == 0


def serving_hosts():
    return [m.name for m in SERVICE_HOSTS if is_serving(m)]


def at_most_one_controller() -> bool:
    active = serving_hosts()
    if len(active) > 1:
        raise Exception(f"two controllers active at once: {active}")
    return True


# The contract's first safety property, checked continuously while a
# scenario runs (every command the driver sends re-checks it when due).
# The condition is passed positionally and the result cast: the driver's
# type stubs declare polling_condition either as a decorator factory
# returning a union, or with a required `fun` and no return type; this form
# type-checks against both and is what the driver runs.
single_controller = cast(
    ContextManager[None],
    polling_condition(at_most_one_controller, seconds_interval=1.0, description="never two controllers active"),
)


# ---------------------------------------------------------------- waiting


def jetstream_cluster_cmd(machine, all_voters=True):
    # Meta leader known and, with all_voters, all three servers in the meta
    # group (a fresh cluster with one server still down only has a leader).
    condition = ".meta_cluster.leader != null"
    if all_voters:
        condition += " and .meta_cluster.cluster_size == 3"
    return (
        f"curl -sf --max-time 3 http://{mgmt(machine)}:{PORTS['natsMonitor']}/jsz"
        f" | jq -e '{condition}'"
    )


def wait_for_zone(machines=None, all_voters=True):
    machines = machines or ZONE_HOSTS
    for m in machines:
        m.wait_for_unit("nats.service", timeout=BOOT_TIMEOUT)
    for m in machines:
        m.wait_until_succeeds(jetstream_cluster_cmd(m, all_voters), timeout=BOOT_TIMEOUT)
    for m in machines:
        if m in SERVICE_HOSTS:
            m.wait_for_unit(AGENT_UNIT, timeout=BOOT_TIMEOUT)


def wait_serving(machine, timeout=PROMOTION_TIMEOUT):
    machine.wait_until_succeeds(has_vip_cmd(), timeout=timeout)
    machine.wait_until_succeeds(serving_cmd(machine), timeout=timeout)


def assert_not_serving_for(machines, seconds):
    """Holds for `seconds`: none of `machines` serves a controller."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for m in machines:
            assert not is_serving(m), f"{m.name} serves a controller but must not"
        time.sleep(1)


def agent_status(machine):
    return machine.succeed(AGENT_STATUS_CMD)


# ---------------------------------------------------------------- the client


def append(message_id, timeout=PROMOTION_TIMEOUT):
    """Appends one fact through the VIP, retrying with the SAME message_id
    until it is acknowledged. Returns the seconds it took."""
    cmd = APPEND_CMD.format(endpoint=ENDPOINT, tls=TLS_ARGS, message_id=message_id)
    start = time.monotonic()
    while True:
        status, out = client.execute(f"timeout 10 {cmd}", timeout=30)
        if status == 0:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise Exception(f"append {message_id} not acknowledged within {timeout}s: {out}")
        time.sleep(0.2)


def append_many(prefix, count, timeout=PROMOTION_TIMEOUT):
    acked = []
    for i in range(count):
        message_id = f"{prefix}-{i}"
        append(message_id, timeout=timeout)
        acked.append(message_id)
    return acked


def fetch_message_ids():
    """Every fact in the `operational` store buffer, through the VIP, via the
    `verifier` consumer (never confirmed, so the page starts at the oldest)."""
    body = '{"consumerName": "verifier", "limit": 1000}'
    out = client.succeed(
        f"curl -sS --fail --max-time 10 {CURL_TLS} -H 'Content-Type: application/json' "
        f"-d '{body}' {ENDPOINT}/bsfg.v1.BoundaryService/FetchFacts"
    )
    facts = json.loads(out).get("facts", [])
    return [f["fact"]["envelope"]["messageId"] for f in facts]


def assert_all_present_once(acked):
    ids = fetch_message_ids()
    missing = sorted(set(acked) - set(ids))
    assert not missing, f"acknowledged facts missing after failover: {missing}"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"facts stored more than once despite message_id reuse: {duplicates}"
    print(f"{len(acked)} acknowledged facts present exactly once ({len(ids)} in the stream)")


def bring_up_zone():
    """Boots the zone with alpha as the active controller: alpha and gamma
    first (a quorum), beta once alpha serves, so the scenarios never depend
    on who wins a simultaneous boot (bring_up.py tests that case)."""
    alpha.start()
    gamma.start()
    wait_for_zone([alpha, gamma], all_voters=False)
    wait_serving(alpha)
    beta.start()
    client.start()
    wait_for_zone()
    client.wait_for_unit("multi-user.target")
    wait_serving(alpha)
