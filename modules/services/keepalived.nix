# Keepalived on alpha and beta only: VRRP (unicast to the other service host,
# on the zone segment) moves the VIP. modules/lib renders the whole
# keepalived.conf (render.nix: vrrp_script `bsfg-gate-agent check`, the
# gate agent's track_file, the instance, in an order keepalived accepts) and
# the three nixpkgs options that reproduce it byte for byte; this module
# assigns them and nothing else to services.keepalived. The zone simulator
# runs the same text.
{
  config,
  lib,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  k = s.keepalived;
in {
  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf s.runs.keepalived {
      services.keepalived = {
        enable = true;
        inherit (k.nixpkgs) enableScriptSecurity extraGlobalDefs extraConfig;
      };

      # The vrrp_script runs as keepalived_script, which the nixpkgs module
      # does not create.
      users.users.${k.checkScript.user} = {
        isSystemUser = true;
        group = k.checkScript.user;
        description = "keepalived health-check scripts";
      };
      users.groups.${k.checkScript.user} = {};

      # nixpkgs starts keepalived from this timer (OnActiveSec = 5s); beta
      # waits longer so that alpha wins the election of a zone-wide boot.
      systemd.timers.keepalived-boot-delay.timerConfig.OnActiveSec = lib.mkForce "${toString k.bootDelaySeconds}s";

      systemd.services.keepalived = {inherit (s.units.keepalived) wants after;};
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
