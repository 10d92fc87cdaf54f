# Keepalived on alpha and beta only: VRRP (unicast to the other service host,
# on the zone segment) moves the VIP. Values from modules/lib/zone.nix:
#   * both hosts start BACKUP with nopreempt; alpha has the higher priority;
#   * vrrp_script = `bsfg-gate-agent check` (exit 0 only while this host's gate
#     agent answers and local JetStream is healthy), weight 0: failure =
#     FAULT, so a host never bids for (or keeps) the VIP without a healthy
#     JetStream or without a live agent (a dead agent cannot demote it);
#   * track_file (weight 0) written by the gate agent: non-zero = FAULT, the
#     agent's way to demote and release the VIP even under nopreempt;
#   * notify_fifo: keepalived reports every transition to the agent.
{
  config,
  lib,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  k = s.keepalived;
  render = import ../lib/render.nix;
  agentUnit = "bsfg-gate-agent.service";
in {
  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf s.runs.keepalived {
      services.keepalived = {
        enable = true;
        # Refuse scripts whose path a non-root user could write.
        enableScriptSecurity = true;
        extraGlobalDefs = lib.concatStringsSep "\n" (render.globalDefs k);
        extraConfig = render.trackFileBlock k;

        vrrpScripts.${k.checkScript.name} = {
          script = render.quoteArgv k.checkScript.argv;
          inherit (k.checkScript) interval timeout fall rise weight user;
        };

        vrrpInstances.${k.instance} = {
          inherit (k) interface state virtualRouterId priority noPreempt unicastSrcIp unicastPeers;
          virtualIps = [
            {
              addr = "${k.vip.address}/${toString k.vip.prefixLength}";
              dev = k.vip.interface;
            }
          ];
          trackScripts = [k.checkScript.name];
          # advert_int and track_file have no nixpkgs option.
          extraConfig = render.instanceExtra k;
        };
      };

      # The vrrp_script runs as keepalived_script (the nixpkgs default for
      # vrrpScripts.<name>.user), which the nixpkgs module does not create.
      users.users.keepalived_script = {
        isSystemUser = true;
        group = "keepalived_script";
        description = "keepalived health-check scripts";
      };
      users.groups.keepalived_script = {};

      # nixpkgs starts keepalived from this timer (OnActiveSec = 5s); beta
      # waits longer so that alpha wins the election of a zone-wide boot.
      systemd.timers.keepalived-boot-delay.timerConfig.OnActiveSec = lib.mkForce "${toString k.bootDelaySeconds}s";

      # The notify FIFO and the track file live in the agent's runtime
      # directory: start keepalived after the agent has created it.
      systemd.services.keepalived = {
        wants = [agentUnit];
        after = [agentUnit];
      };
    })
    {
      assertions = [
        {
          # Gamma has no VRRP role (seed "Service Distribution").
          assertion = s.runs.keepalived || !config.services.keepalived.enable;
          message = "services.bsfg: ${cfg.hostName} has role ${cfg.role}; keepalived runs on alpha and beta only. Do not enable services.keepalived on it.";
        }
      ];
    }
  ]);
}
