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
  # argv[0] of the binaries ({ controller; gateAgent; natsServer; }, each
  # optional); the simulator passes absolute paths.
  binaries ? {},
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
  # The daemons' NATS users the simulator made for this instance,
  # { controller = { passwordFile; passwordHash; }; gateAgent = { ... };
  # backup = { ... }; } (backup: the snapshots' user, read from its
  # zone-wide passwordFile by the drills' `bsfgctl backup`/`restore`):
  # replace the description's nats.users; the simulator writes each
  # password to every service host's paths.natsControllerPassword and
  # paths.natsAgentPassword.
  natsUsers ? null,
  # The simulated zone's three JetStream servers share one disk, and each
  # reserves every stream's max_bytes: a zone sized for real hosts (10 GiB
  # classes) would need tens of GB free on the machine running the drills.
  # Every stream class and forward buffer is capped at this size; null keeps
  # the description's sizes.
  storageCap ? "256 MiB",
  # The node exporter's port on every host (the module's default,
  # services.bsfg.observability.nodeExporterPort).
  nodeExporterPort ? (import ./node-exporter.nix).defaultPort,
}: let
  lib = import ./zone.nix;
  firewall = import ./firewall.nix;
  nodeExporter = import ./node-exporter.nix;
  zone = import ./simulated-zone.nix {inherit zoneFile natsSystemUser natsUsers storageCap;};
in
  if builtins.match "/.*" runDir == null
  then throw "zone: runDir = ${builtins.toJSON runDir} must be an absolute path"
  else {
    inherit (zone) zone tier vip vrrp ports managementNetwork lease certificatePolicy byRole;
    # Every host as the modules configure it with observability on: its
    # node exporter (Debian's, started with `nodeExporter.args`) and the
    # firewall that admits the management network to it. The NATS
    # exporter is not simulated; its port stays closed.
    hosts = builtins.mapAttrs (_: settings:
      settings
      // {
        nodeExporter = nodeExporter.host {
          inherit settings;
          port = nodeExporterPort;
        };
        firewall = {
          extraInputRules = firewall.extraInputRules {
            inherit settings zone;
            exporterPorts = [nodeExporterPort];
          };
          ruleset = firewall.ruleset {
            inherit settings zone;
            exporterPorts = [nodeExporterPort];
          };
        };
      }) (lib.allHosts {
      inherit zone binaries requireMountPoint;
      pathsFor = lib.simulatorPaths runDir;
      supervisor = "process";
    });
    # gamma's service probe's scrape job (null: no probe).
    probeScrapeConfig = (import ./probe.nix).scrapeConfig zone;
    # The certificates the simulator issues (with bsfg-pki, as `bsfgctl pki
    # issue` does) and installs where each host's daemons read them.
    pki = (import ./pki.nix).plan {
      inherit zone;
      installsFor = h: let
        p = lib.simulatorPaths runDir h;
      in {
        controller = p.tls;
        natsRoute = p.natsRoute;
        inherit (p) probe;
      };
    };
  }
