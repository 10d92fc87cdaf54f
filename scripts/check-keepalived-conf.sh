#!/usr/bin/env bash
# Debian's keepalived checks (`keepalived -t`) the keepalived.conf the
# appliance runs: alpha's and beta's of hosts/zone.nix as modules/lib renders
# it with the appliance's paths, which is byte for byte what nixpkgs writes
# from the options modules/services/keepalived.nix sets
# (tests/lib/module-smoke.nix). It must parse without a warning: a track file
# or script "not found, ignoring" would leave the gate agent unable to demote.
#
# keepalived -t needs the instance's interface to exist, so it runs in a
# network namespace of its own with a veth of that name. Two substitutions,
# neither in a block keepalived resolves by name: the check script's program
# is /bin/true (keepalived -t checks that it exists, and the store path
# does not exist here), and its user is root (Debian's keepalived 2.2.7 -t
# terminates itself when checking a script as another user).
#
#   scripts/check-keepalived-conf.sh [CHECKOUT]    default: this repository
set -euo pipefail
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$ROOT"
die() { echo "check-keepalived-conf: FAILED: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "needs root (network namespace)"
command -v keepalived >/dev/null || die "keepalived not found (apt-get install keepalived)"

ns=kaconf-$$
work=$(mktemp -d /tmp/kaconf.XXXXXX)
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

agent=/nix/store/00000000000000000000000000000000-bsfg-gate-agent/bin/bsfg-gate-agent
for host in alpha beta; do
  nix-instantiate --eval --strict --json -E "
    let z = import ./modules/lib/zone.nix;
    in (z.hostSettings {
      zone = z.normalise (import ./hosts/zone.nix);
      host = \"$host\";
      paths = z.nixosPaths;
      binaries = { gateAgent = \"$agent\"; };
    }).keepalived" 2>"$work/err" >"$work/$host.json" || { cat "$work/err" >&2; die "cannot render $host's keepalived.conf"; }
  iface=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["interface"])' "$work/$host.json")
  python3 - "$work/$host.json" "$agent" "$work/$host.conf" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))
text = k["configText"]
text = text.replace(sys.argv[2], "/bin/true").replace("user " + k["checkScript"]["user"], "user root")
open(sys.argv[3], "w").write(text)
PY
  ip netns add "$ns"
  ip -n "$ns" link add "$iface" type veth peer name kaconf-peer
  ip -n "$ns" link set "$iface" up
  if ! ip netns exec "$ns" keepalived -t -f "$work/$host.conf" >"$work/out" 2>&1 ||
    grep -qiE "not found|ignoring|warning|error" "$work/out"; then
    cat "$work/out" >&2
    die "keepalived -t refuses or warns about $host's keepalived.conf (rendered by modules/lib/render.nix)"
  fi
  ip netns del "$ns"
  echo "    $host: keepalived -t accepts it ($(grep -c . "$work/$host.conf") lines)"
done
