# Entry point for the zone simulator (crates/bsfg-zonesim):
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./modules/lib/simulator.nix { zoneFile = ./hosts/zone.nix; runDir = "/some/run/dir"; }'
#
# Output (documented with an example in modules/lib/README.md): the zone-level
# settings plus, for every host, exactly what the NixOS modules configure on
# that host, with paths under <runDir>/<host>/ and the gate agent supervising
# the controller as a child process instead of a systemd unit.
{
  zoneFile,
  runDir,
  # argv[0] of the binaries; the simulator may pass absolute paths.
  binaries ? (import ./zone.nix).defaultBinaries,
  # The simulator's hosts share one filesystem; it simulates a missing
  # artifact mount by removing the directory, so the mount-point check is off
  # unless the simulator provides real mounts.
  requireMountPoint ? false,
  # The NATS system user the simulator made for this instance,
  # { passwordFile; passwordHash; } (bcrypt): replaces the description's
  # nats.systemUser, whose password only the zone's operator knows. The
  # simulator writes the password to passwordFile and to each service
  # host's credentials directory (paths.natsSystemPassword), as
  # LoadCredential= would.
  natsSystemUser ? null,
}: let
  lib = import ./zone.nix;
  desc = import zoneFile;
  zone = lib.normalise (
    if natsSystemUser == null
    then desc
    else desc // {nats = (desc.nats or {}) // {systemUser = natsSystemUser;};}
  );
in
  if builtins.match "/.*" runDir == null
  then throw "zone: runDir = ${builtins.toJSON runDir} must be an absolute path"
  else {
    inherit (zone) zone tier vip vrrp ports managementNetwork lease certificatePolicy byRole;
    hosts = lib.allHosts {
      inherit zone binaries requireMountPoint;
      pathsFor = lib.simulatorPaths runDir;
      supervisor = "process";
    };
  }
