#!/usr/bin/env bash
# Debian's chronyd parses (`chronyd -p`) the chrony.conf each host of
# hosts/zone.nix runs: the lines nixpkgs' chrony module writes from
# `services.chrony.servers` (`server <s> iburst`) and the zone library's
# `extraConfig` (peers, allow, orphan mode, makestep; modules/lib/network.nix),
# which modules/base.nix assigns. A directive chronyd does not know fails.
#
#   scripts/check-chrony-conf.sh [CHECKOUT]    default: this repository
set -euo pipefail
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$ROOT"
die() { echo "check-chrony-conf: FAILED: $*" >&2; exit 1; }
command -v chronyd >/dev/null || die "chronyd not found (apt-get install chrony)"

work=$(mktemp -d /tmp/chronyconf.XXXXXX)
trap 'rm -rf "$work"' EXIT

for host in alpha beta gamma; do
  nix-instantiate --eval --strict --json -E "
    let z = import ./modules/lib/zone.nix;
        c = (z.hostSettings {
          zone = z.normalise (import ./hosts/zone.nix);
          host = \"$host\";
          paths = z.nixosPaths;
        }).chrony;
    in builtins.concatStringsSep \"\" (map (s: \"server \${s} iburst\n\") c.servers)
       + \"driftfile $work/$host.drift\n\" + c.extraConfig
  " 2>/dev/null | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin))' > "$work/$host.conf" \
    || die "$host: the zone library did not render chrony's configuration"
  out=$(chronyd -p -f "$work/$host.conf" 2>&1) || die "$host: chronyd -p refuses it: $out"
  grep -q '^local stratum [0-9]* orphan$' "$work/$host.conf" || die "$host: no orphan mode"
  echo "    $host: chronyd -p accepts it ($(grep -c '^peer ' "$work/$host.conf") peers, $(grep -c '^server ' "$work/$host.conf") servers)"
done
