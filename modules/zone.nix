# The option tree of a BSFG zone host: which zone, which host of it, which
# role. Everything else (modules/services/*, storage, firewall, observability)
# reads `services.bsfg.settings`, computed here by the pure zone library
# (modules/lib/zone.nix) from the zone description, so the NixOS hosts and the
# zone simulator can never disagree about a port, a priority or a path.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkEnableOption mkOption types literalExpression;
  cfg = config.services.bsfg;
  zoneLib = import ./lib/zone.nix;
in {
  options.services.bsfg = {
    enable = mkEnableOption "this host's part of a BSFG Triad-HA zone (set by the role modules)";

    zone = mkOption {
      # Deliberately an untyped attribute set: the zone description is
      # validated by the pure library (clear "zone: ..." errors), the same
      # code the zone simulator runs outside NixOS. Typing it again here
      # would mean two validators that can drift.
      type = types.attrs;
      example = literalExpression "import ./hosts/zone.nix";
      description = ''
        The zone description shared by the three hosts: zone id, the hosts
        with their roles and addresses, the VIP, VRRP settings, durability
        tier, stream classes, consumers, buckets, peers, certificate paths,
        lease. Schema and examples: modules/lib/README.md.
      '';
    };

    hostName = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      example = "alpha";
      description = "This host's name in `services.bsfg.zone.hosts`.";
    };

    role = mkOption {
      type = types.enum zoneLib.roles;
      example = "beta";
      description = ''
        This host's role. Set by the role modules (nixosModules.alpha, .beta,
        .gamma) and checked against the zone description: a host imported
        with the wrong role module fails evaluation.
      '';
    };

    manageNetwork = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to configure the host's network from the zone description:
        its addresses (zone segment, management network, the dedicated VRRP
        segment), the static routes of `network.routes`, the default gateway
        and the DNS servers. Turn off when addressing is managed elsewhere
        (systemd-networkd files, DHCP reservations); the addresses must still
        match the description, since NATS and keepalived bind to them.
      '';
    };

    validateConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to check the generated configurations at build time, so that
        a system whose daemons would refuse them is never built: the
        controller's (`bsfg-controller --check-config`), the gate agent's
        (`bsfg-gate-agent check-config`) and nats-server's (`nats-server -t`).
        Turn off only when cross-compiling (the checks run the binaries).
      '';
    };

    packages = {
      controller = mkOption {
        type = types.package;
        description = "Package providing `bin/bsfg-controller` (the flake sets this).";
      };
      gateAgent = mkOption {
        type = types.package;
        description = "Package providing `bin/bsfg-gate-agent` (the flake sets this).";
      };
      cli = mkOption {
        type = types.package;
        description = "Package providing `bin/bsfgctl`, installed for operators (the flake sets this).";
      };
      natsServer = mkOption {
        type = types.package;
        description = ''
          Package providing `bin/nats-server`: the release the tests run
          (modules/lib/versions.nix). The flake sets its `nats-server`
          package; nats.service runs it instead of nixpkgs' nats-server.
        '';
      };
    };

    normalisedZone = mkOption {
      type = types.attrs;
      readOnly = true;
      internal = true;
      description = "The validated zone description with defaults filled in (modules/lib/zone.nix `normalise`).";
    };

    settings = mkOption {
      type = types.attrs;
      readOnly = true;
      description = ''
        Everything this host runs, computed from the zone description by
        modules/lib/zone.nix `hostSettings` with the appliance's real paths:
        `runs`, `paths`, `ports`, `nats.{settings,configText}`, `keepalived`
        (with `configText`, the whole keepalived.conf), `controller.{config,configText}`,
        `gateAgent.{config,configText}`, `polkitRule`, `units`. Read-only; the
        service modules only assign it to nixpkgs options. The zone simulator gets the same attribute set
        (paths under its run directory) from modules/lib/simulator.nix.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    services.bsfg.normalisedZone = zoneLib.normalise cfg.zone;
    services.bsfg.settings = zoneLib.hostSettings {
      zone = cfg.normalisedZone;
      host = cfg.hostName;
      paths = zoneLib.nixosPaths;
      supervisor = "systemd";
      binaries = {
        controller = lib.getExe' cfg.packages.controller "bsfg-controller";
        gateAgent = lib.getExe' cfg.packages.gateAgent "bsfg-gate-agent";
        natsServer = lib.getExe' cfg.packages.natsServer "nats-server";
        bsfgctl = lib.getExe' cfg.packages.cli "bsfgctl";
        chronyc = lib.getExe' config.services.chrony.package "chronyc";
      };
      requireMountPoint = true;
    };

    assertions =
      # Checked on the description as written, so each store path is named
      # even though the zone library would refuse the first one it meets.
      map (s: {
        assertion = !(zoneLib.isStorePath s.path);
        message = "services.bsfg.zone: ${zoneLib.secretPathError s.option s.path}.";
      }) (zoneLib.secretPaths cfg.zone)
      ++ [
        {
          assertion = cfg.normalisedZone.hosts ? ${cfg.hostName};
          message = "services.bsfg.hostName = \"${cfg.hostName}\" is not a host of zone ${cfg.normalisedZone.zone} (hosts: ${lib.concatStringsSep ", " (builtins.attrNames cfg.normalisedZone.hosts)}). Set services.bsfg.hostName or networking.hostName.";
        }
        {
          assertion = (cfg.normalisedZone.hosts.${cfg.hostName}.role or null) == cfg.role;
          message = "host ${cfg.hostName} is imported with the ${cfg.role} role module, but the zone description gives it role \"${cfg.normalisedZone.hosts.${cfg.hostName}.role or "?"}\". Import nixosModules.${cfg.normalisedZone.hosts.${cfg.hostName}.role or "<role>"} instead.";
        }
      ];
  };
}
