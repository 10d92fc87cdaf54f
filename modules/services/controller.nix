# The BSFG controller unit on alpha and beta.
#
# Contract section 7 and the seed's "Failover Contract": the controller is
# NEVER started by boot or by generic service auto-start, only by the gate
# agent after every promotion gate holds. So this unit has no wantedBy (an
# assertion keeps it that way), Restart=no (a crashed controller comes back
# only through the agent's gates), and restartIfChanged = false (a
# `nixos-rebuild switch` must not restart it behind the agent's back; new
# configuration takes effect at the next promotion, or when an operator asks
# the agent for a restart).
#
# It binds the VIP (listen.address), reports READY=1 after binding it and
# connecting to JetStream, and pings the watchdog. Certificates arrive via
# LoadCredential= (read by systemd as root from the paths in the zone
# description, never copied into the Nix store), and so does the NATS system
# user's password when the zone sets nats.systemUser.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  certs = cfg.normalisedZone.certificates;
  # The NATS system user's password (nats.systemUser), for the meta-leader
  # step-down; the controller config names it under /run/credentials too.
  natsSystemUser = cfg.normalisedZone.nats.systemUser or null;
  toml = pkgs.formats.toml {};
  rawConfig = toml.generate "bsfg-controller.toml" s.controller.config;
  # Like nixpkgs' services.nats.validateConfig: refuse to build a system whose
  # controller would refuse its configuration at promotion time.
  # `--check-config` parses and checks without I/O beyond reading the file.
  configFile =
    if cfg.validateConfig
    then
      pkgs.runCommand "bsfg-controller-checked.toml" {} ''
        ${lib.getExe' cfg.packages.controller "bsfg-controller"} --config ${rawConfig} --check-config
        ln -s ${rawConfig} $out
      ''
    else rawConfig;
  unitName = "bsfg-controller";
  unit = config.systemd.services.${unitName} or null;
in {
  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf s.runs.controller {
      environment.etc."bsfg/controller.toml".source = configFile;

      users.users.bsfg-controller = {
        isSystemUser = true;
        group = "bsfg-controller";
        extraGroups = ["bsfg-artifacts"];
        description = "BSFG zone controller";
      };
      users.groups.bsfg-controller = {};

      systemd.services.${unitName} = {
        description = "BSFG zone controller (started only by bsfg-gate-agent)";
        # Deliberately no wantedBy/requiredBy: see the header.
        after = ["network-online.target" "nats.service"];
        restartIfChanged = false;
        restartTriggers = [configFile];
        unitConfig = {
          # /artifacts must be mounted, not the bare mount point.
          RequiresMountsFor = [s.paths.artifacts];
          # The agent decides about retries; never rate-limit its starts.
          StartLimitIntervalSec = 0;
        };
        serviceConfig = {
          Type = "notify";
          NotifyAccess = "main";
          ExecStart = "${lib.getExe' cfg.packages.controller "bsfg-controller"} --config ${s.paths.controllerConfig}";
          WatchdogSec = "10s";
          Restart = "no";
          TimeoutStartSec = "30s";
          TimeoutStopSec = "15s";
          KillMode = "mixed";

          User = "bsfg-controller";
          Group = "bsfg-controller";
          SupplementaryGroups = ["bsfg-artifacts"];
          LoadCredential =
            [
              "cert.pem:${certs.certificate}"
              "key.pem:${certs.privateKey}"
              "ca.pem:${certs.ca}"
            ]
            ++ lib.optional (natsSystemUser != null) "nats-system-password:${natsSystemUser.passwordFile}";

          # Hardening: the controller needs TCP (clients on the VIP, NATS on
          # loopback), AF_UNIX (sd_notify, journald) and write access to the
          # artifact directory, nothing else.
          ProtectSystem = "strict";
          ReadWritePaths = [s.paths.artifacts];
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          # Only its own user is mapped: /artifacts is owned by it, the
          # credentials are handed to it, nothing else needs an identity.
          PrivateUsers = true;
          DevicePolicy = "closed";
          NoNewPrivileges = true;
          CapabilityBoundingSet = "";
          AmbientCapabilities = "";
          RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectProc = "invisible";
          ProcSubset = "pid";
          RemoveIPC = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = ["@system-service" "~@privileged" "~@resources"];
          UMask = "0027";
        };
      };
    })
    {
      assertions = [
        {
          # Seed: "The BSFG controller must not be independently enabled for
          # unconditional boot-time start".
          assertion = unit == null || (unit.wantedBy == [] && unit.requiredBy == [] && (unit.upheldBy or []) == []);
          message = "services.bsfg: systemd.services.${unitName} must not be wantedBy, requiredBy or upheldBy any unit; only bsfg-gate-agent starts it (contract section 7).";
        }
        {
          # Gamma is "physically incapable of becoming active controller".
          assertion = s.runs.controller || unit == null;
          message = "services.bsfg: ${cfg.hostName} has role ${cfg.role}; it must not have a ${unitName} unit (only alpha and beta may run the controller).";
        }
      ];
    }
  ]);
}
