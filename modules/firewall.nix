# nftables firewall of a zone host, on top of the NixOS firewall (nftables
# backend, default drop for anything not allowed). The rules are rendered by
# the zone library (modules/lib/firewall.nix), which the zone simulator
# loads with `nft` into every host namespace, so the drills run behind them:
#   * NATS cluster port: only from the other two zone hosts (and TLS with
#     zone certificates on top);
#   * VRRP (IP protocol 112): only on the coordination interface, only from
#     the other service host (seed "VRRP exposure outside the zone-local
#     control segment is prohibited");
#   * controller port 9443: only when addressed to the VIP (a host's own
#     address never serves it);
#   * NATS monitoring, exporters and the read-only management endpoints:
#     only from the management network, only to the management address;
#   * SSH (services.openssh.ports): only from the zone's `ssh.allowFrom`
#     networks, by default the management network alone. NixOS's own
#     opening of SSH on every network (services.openssh.openFirewall) is
#     turned off for that.
# The NATS client port is not opened at all: it listens on 127.0.0.1.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption types;
  cfg = config.services.bsfg;
  rules = import ./lib/firewall.nix;
in {
  options.services.bsfg.firewall.enable = mkOption {
    type = types.bool;
    default = true;
    description = ''
      Whether to restrict the zone's ports with the NixOS nftables firewall
      (rules rendered by modules/lib/firewall.nix). Turn off only if the
      host's firewall is managed elsewhere with equivalent rules.
    '';
  };

  config = lib.mkIf (cfg.enable && cfg.firewall.enable) {
    networking.nftables.enable = true;
    networking.firewall.enable = true;
    networking.firewall.extraInputRules = rules.extraInputRules {
      zone = cfg.normalisedZone;
      settings = cfg.settings;
      exporterPorts = lib.optionals cfg.observability.enable cfg.observability.exporterPorts;
      sshPorts = lib.optionals config.services.openssh.enable config.services.openssh.ports;
    };
    # SSH from ssh.allowFrom only (the rule above), not from every network.
    services.openssh.openFirewall = lib.mkDefault false;
    assertions = [
      {
        assertion = !(config.services.openssh.enable && config.services.openssh.openFirewall);
        message = "services.bsfg: services.openssh.openFirewall = true opens SSH on every network, but the zone admits SSH only from ssh.allowFrom (${builtins.concatStringsSep ", " cfg.normalisedZone.ssh.allowFrom}). Remove the setting, or widen ssh.allowFrom in the zone description (e.g. [ \"0.0.0.0/0\" ]).";
      }
    ];
  };
}
