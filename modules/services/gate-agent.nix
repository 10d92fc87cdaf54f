# The gate agent on alpha and beta: the only thing that starts the
# controller (contract section 7). It reads keepalived's notify FIFO, checks
# the promotion gates, writes the keepalived track file to demote, and starts
# or stops bsfg-controller.service with `systemctl` (D-Bus). A polkit rule
# grants its user exactly the verbs it uses on that one unit, nothing else.
#
# Hardening is as tight as the job allows: it needs AF_NETLINK (reads the
# VIP's presence from the kernel), AF_UNIX (D-Bus), TCP (NATS, its status
# endpoint), write access to its runtime directory (FIFO, track file) and to
# /artifacts (the writability probe).
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  # Restart policy, from the zone library (the simulator follows the same data).
  u = s.gateAgent.unit;
  toml = pkgs.formats.toml {};
  configFile = toml.generate "bsfg-gate-agent.toml" s.gateAgent.config;
  unitName = "bsfg-gate-agent";
  user = "bsfg-gate-agent";
  controllerUnit = (import ../lib/zone.nix).controllerUnit;
  controllerVerbs = ["start" "stop" "restart" "kill" "reset-failed"];
in {
  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf s.runs.gateAgent {
      environment.etc."bsfg/gate-agent.toml".source = configFile;

      users.users.${user} = {
        isSystemUser = true;
        group = user;
        extraGroups = ["bsfg-artifacts"];
        description = "BSFG gate agent";
      };
      users.groups.${user} = {};

      systemd.services.${unitName} = {
        description = "BSFG gate agent (promotes and demotes the controller)";
        wantedBy = ["multi-user.target"];
        wants = ["network-online.target"];
        after = ["network-online.target" "nats.service"];
        restartTriggers = [configFile];
        # Restarted forever, with backoff, never into a start limit: without
        # its agent a host must not stay in charge (keepalived's check fails
        # and the VIP moves), and a crash loop must not end in a dead unit.
        unitConfig.StartLimitIntervalSec = u.startLimitIntervalSec;
        serviceConfig = {
          # TO VERIFY once crates/bsfg-gate-agent lands: the daemon
          # subcommand name (`run`) and whether it sends sd_notify READY=1.
          ExecStart = "${lib.getExe' cfg.packages.gateAgent "bsfg-gate-agent"} run --config ${s.paths.agentConfig}";
          Type = "simple";
          # The FIFO must exist, owned by the agent, before keepalived (root,
          # ordered after this unit) opens it; otherwise keepalived would
          # create it root-owned and the agent could not read it.
          ExecStartPre = pkgs.writeShellScript "bsfg-gate-agent-fifo" ''
            fifo=${lib.escapeShellArg s.keepalived.notifyFifo}
            [ -p "$fifo" ] || ${pkgs.coreutils}/bin/mkfifo -m 0600 "$fifo"
          '';
          Restart = u.restart;
          RestartSec = "${toString u.restartSec}s";
          RestartSteps = u.restartSteps;
          RestartMaxDelaySec = "${toString u.restartMaxDelaySec}s";

          User = user;
          Group = user;
          SupplementaryGroups = ["bsfg-artifacts"];
          # No LoadCredential=: a missing file would fail this unit before
          # the agent could say which one is missing. The agent reads the
          # public certificate where it is installed and only looks whether
          # the controller's other credentials exist (gate 5).

          # The FIFO keepalived writes to and the track file keepalived
          # reads: preserved across agent restarts so keepalived's open FIFO
          # stays valid.
          # 0755: the controller (another user) reads the lease sighting here;
          # the FIFO itself is 0600 and the track file is only read by root.
          RuntimeDirectory = "bsfg-gate-agent";
          RuntimeDirectoryMode = "0755";
          RuntimeDirectoryPreserve = "yes";

          ProtectSystem = "strict";
          # "-": the agent must start (and report the failing gate) even
          # when the artifact storage is missing.
          ReadWritePaths = ["-${s.paths.artifacts}"];
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          NoNewPrivileges = true;
          CapabilityBoundingSet = "";
          AmbientCapabilities = "";
          RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK"];
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
          RemoveIPC = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = ["@system-service" "~@privileged" "~@resources"];
          UMask = "0027";
        };
      };

      # Least privilege to drive the controller: these systemd verbs on
      # bsfg-controller.service, for this user only. `kill` (SIGKILL after
      # controller.stop_timeout) and `reset-failed` are what the agent's
      # systemd supervisor uses besides start/stop
      # (crates/bsfg-gate-agent/src/supervisor/systemd.rs).
      security.polkit.enable = true;
      security.polkit.extraConfig = ''
        // services.bsfg (modules/services/gate-agent.nix)
        polkit.addRule(function (action, subject) {
          if (action.id == "org.freedesktop.systemd1.manage-units" &&
              subject.user == "${user}" &&
              action.lookup("unit") == "${controllerUnit}") {
            var verb = action.lookup("verb");
            if (${lib.concatMapStringsSep " || " (v: "verb == \"${v}\"") controllerVerbs}) {
              return polkit.Result.YES;
            }
          }
        });
      '';
    })
    {
      assertions = [
        {
          assertion = s.runs.gateAgent || !(config.systemd.services ? ${unitName});
          message = "services.bsfg: ${cfg.hostName} has role ${cfg.role}; it must not run ${unitName} (only alpha and beta promote a controller).";
        }
      ];
    }
  ]);
}
