# The gate agent on alpha and beta: the only thing that starts the
# controller (contract section 7). It reads keepalived's notify FIFO, checks
# the promotion gates, writes the keepalived track file to demote, and starts
# or stops bsfg-controller.service with `systemctl` (D-Bus). A polkit rule
# grants its user exactly the verbs it uses on that one unit, nothing else.
# Unit (Type=notify with a watchdog), configuration and polkit rule are
# rendered by modules/lib; this module assigns them.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  zoneLib = import ../lib/zone.nix;
  unitName = "bsfg-gate-agent";
  u = s.units.${unitName} or null;
  # Never build a host whose gate agent would refuse its configuration.
  configFile = import ./checked-config.nix {inherit lib pkgs;} {
    name = "bsfg-gate-agent";
    text = s.gateAgent.configText;
    validate = cfg.validateConfig;
    package = cfg.packages.gateAgent;
    exe = "bsfg-gate-agent";
    checkArgs = ["check-config"];
  };
in {
  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf s.runs.gateAgent {
      environment.etc."bsfg/gate-agent.toml".source = configFile;

      users.users.${zoneLib.agentUser} = {
        isSystemUser = true;
        group = zoneLib.agentUser;
        extraGroups = [zoneLib.artifactsGroup];
        description = "BSFG gate agent";
      };
      users.groups.${zoneLib.agentUser} = {};

      systemd.services.${unitName} = {
        inherit (u) description wantedBy wants after unitConfig serviceConfig restartIfChanged;
        restartTriggers = [configFile];
      };

      security.polkit.enable = true;
      security.polkit.extraConfig = s.polkitRule;
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
