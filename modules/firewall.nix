# nftables firewall of a zone host, on top of the NixOS firewall (nftables
# backend, default drop for anything not allowed):
#   * NATS cluster port: only from the other two zone hosts;
#   * VRRP (IP protocol 112): only on the coordination interface, only from
#     the other service host (seed "VRRP exposure outside the zone-local
#     control segment is prohibited");
#   * controller port 9443: only when addressed to the VIP (a host's own
#     address never serves it);
#   * NATS monitoring, exporters and management endpoints: only from the
#     management network.
# The NATS client port is not opened at all: it listens on 127.0.0.1.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption types concatStringsSep optionalString;
  cfg = config.services.bsfg;
  s = cfg.settings;
  zone = cfg.normalisedZone;
  others = lib.filter (h: h.name != cfg.hostName) (builtins.attrValues zone.hosts);
  set = xs: "{ ${concatStringsSep ", " (map toString xs)} }";
  monitoringPorts =
    [s.ports.natsMonitor]
    ++ lib.optionals cfg.observability.enable cfg.observability.exporterPorts
    ++ lib.optionals s.runs.gateAgent [s.ports.controllerManagement s.ports.agentManagement];
in {
  options.services.bsfg.firewall.enable = mkOption {
    type = types.bool;
    default = true;
    description = ''
      Whether to restrict the zone's ports with the NixOS nftables firewall
      (rules in modules/firewall.nix). Turn off only if the host's firewall
      is managed elsewhere with equivalent rules.
    '';
  };

  config = lib.mkIf (cfg.enable && cfg.firewall.enable) {
    networking.nftables.enable = true;
    networking.firewall.enable = true;
    networking.firewall.extraInputRules = ''
      # services.bsfg: JetStream cluster routes from the other zone hosts only
      ip saddr ${set (map (h: h.address) others)} tcp dport ${toString s.ports.natsCluster} accept
      ${optionalString s.runs.keepalived ''
        # services.bsfg: VRRP from the other service host, on the coordination interface only
        iifname "${s.keepalived.interface}" ip saddr ${set s.keepalived.unicastPeers} ip protocol 112 accept
        # services.bsfg: the controller answers on the VIP only
        ip daddr ${zone.vip.address} tcp dport ${toString s.ports.controller} accept
      ''}
      # services.bsfg: monitoring and management from the management network only
      ip saddr ${zone.managementNetwork} tcp dport ${set monitoringPorts} accept
    '';
  };
}
