#!/usr/bin/env bash
# The Debian root the zone simulator's systemd mode boots (bsfg-zonesim
# --init systemd): systemd 252 as PID 1, dbus, polkitd and keepalived from
# Debian bookworm. Nothing of ours goes in here: units, configuration,
# users (systemd-sysusers), binaries and state are bound in per host at
# boot, so one root serves every host of every instance read-only.
#
#   container-root.sh TARGET MIRROR
#
# The simulator names the cache directory after the SHA-256 of this file, so
# editing the recipe builds a new root on the next run.
set -euo pipefail
target=$1
mirror=${2:-http://deb.debian.org/debian}
packages=(
  systemd systemd-sysv dbus libpam-systemd polkitd keepalived iproute2 procps
  # polkitd needs a logind (a virtual package debootstrap does not resolve):
  # libpam-systemd provides it.
)
debootstrap --variant=minbase --include="$(
  IFS=,
  echo "${packages[*]}"
)" bookworm "$target" "$mirror"
# What a NixOS host does not have either: the package manager's timers, the
# console getty (the simulator reads each unit's journal instead), and the
# packages' own enablement (the simulator binds its own /etc/systemd/system).
rm -f "$target"/etc/machine-id "$target"/var/lib/dbus/machine-id
: >"$target"/etc/machine-id
# systemd-networkd / resolved are not in minbase; the host's namespace already
# has its addresses. An empty fstab: nspawn provides the API file systems.
: >"$target"/etc/fstab
apt-get -o RootDir="$target" clean 2>/dev/null || rm -rf "$target"/var/cache/apt/archives/*.deb
