# The zone as the operator CLI sees it (`bsfgctl zone status`, `bsfgctl
# commission`): what must be true on every host, computed from the same zone
# description as the NixOS modules and the simulator. JSON-serialisable.
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./modules/lib/operator.nix { zone = import ./hosts/zone.nix; }'
#
# The appliance installs the result as /etc/bsfg/zone.json (modules/observability.nix).
# For a simulator instance pass its runDir: paths then follow
# lib.simulatorPaths, and mounts need only be directories.
{
  zone, # a zone description (normalised here)
  runDir ? null, # null: the appliance's paths; else the simulator's run directory
  requireMountPoint ? runDir == null,
  nodeExporterPort ? null, # the node exporter's port, when the hosts run one
  commissioning ? null, # { class; consumer; } of the commissioning round trip
}: let
  lib = import ./zone.nix;
  net = import ./net.nix;
  z = lib.normalise zone;
  pathsFor =
    if runDir == null
    then (_: lib.nixosPaths)
    else lib.simulatorPaths runDir;
  hosts = lib.allHosts {
    zone = z;
    inherit pathsFor requireMountPoint;
  };
  alpha = z.hosts.${z.byRole.alpha};
  ip = n: let
    # integer -> dotted quad
    o = i: toString (builtins.bitAnd (n / (builtins.foldl' (a: _: a * 256) 1 (builtins.genList (x: x) i))) 255);
  in "${o 3}.${o 2}.${o 1}.${o 0}";
  pow2 = k: builtins.foldl' (a: _: a * 2) 1 (builtins.genList (x: x) k);
  coordinationNetwork = "${ip (net.network alpha.address alpha.prefixLength * pow2 (32 - alpha.prefixLength))}/${toString alpha.prefixLength}";
  addr = host: port: "${host.managementAddress}:${toString port}";
  entry = name: h: let
    s = hosts.${name};
    isService = s.runs.controller;
  in {
    inherit (h) role address managementAddress;
    natsMonitor = addr h z.ports.natsMonitor;
    agent =
      if isService
      then addr h z.ports.agentManagement
      else null;
    controllerManagement =
      if isService
      then addr h z.ports.controllerManagement
      else null;
    nodeExporter =
      if nodeExporterPort == null
      then null
      else addr h nodeExporterPort;
    mounts =
      [
        {
          path = s.paths.jetstream;
          purpose = "jetstream";
          mountPoint = requireMountPoint;
        }
        {
          path = s.paths.opt;
          purpose = "opt";
          mountPoint = requireMountPoint;
        }
      ]
      ++ (
        if isService
        then [
          {
            path = s.paths.artifacts;
            purpose = "artifacts";
            mountPoint = requireMountPoint;
          }
        ]
        else []
      );
    # The disks `bsfgctl install check-disks` expects (modules/lib/disks.nix).
    inherit (s) installDisks;
    absentMounts =
      if isService
      then []
      else [s.paths.artifacts];
    keepalived =
      if s.keepalived == null
      then null
      else {inherit (s.keepalived) interface unicastSrcIp unicastPeers;};
  };
in {
  inherit (z) zone managementNetwork;
  inherit coordinationNetwork commissioning;
  endpoint = "https://${z.vip.address}:${toString z.ports.controller}";
  vip = z.vip.address;
  certificatePolicy = {inherit (z.certificatePolicy) minValidity policy;};
  voters = 3;
  replicas = 3;
  hosts = builtins.mapAttrs entry z.hosts;
  # What `bsfgctl pki` issues and where each file goes on each host.
  pki = (import ./pki.nix).plan {
    zone = z;
    installsFor =
      if runDir == null
      then (import ./pki.nix).applianceInstalls z
      else
        (h: let
          p = lib.simulatorPaths runDir h;
        in {
          controller = p.tls;
          natsRoute = p.natsRoute;
          inherit (p) probe;
        });
  };
}
