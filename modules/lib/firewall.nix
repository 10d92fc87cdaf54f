# The nftables rules of one zone host, as text: what modules/firewall.nix
# hands to the NixOS firewall (networking.firewall.extraInputRules, appended
# to its `input-allow` chain), and the whole ruleset that firewall installs
# around them, which the zone simulator loads with `nft` into each host's
# namespace so every drill runs behind the production rules.
#
# `ruleset` mirrors nixpkgs' nixos/modules/services/networking/
# firewall-nftables.nix with the appliance's settings (table inet nixos-fw,
# input policy drop, `lo` trusted, established/related accepted, new
# connections through input-allow; no allowed TCP ports: modules/firewall.nix
# turns services.openssh.openFirewall off and admits SSH from the zone's
# `ssh.allowFrom` networks only, in extraInputRules; ping allowed; ICMPv6 but
# redirects). Left out:
# the reverse-path filter chain (nothing here depends on it) and the
# temporary-ports set of nixos-firewall-tool.
let
  inherit (builtins) concatStringsSep filter attrValues toString;
  set = xs: "{ ${concatStringsSep ", " (map toString xs)} }";
in rec {
  # Ports only the management network reaches.
  managementPorts = {
    settings, # hostSettings of the host
    exporterPorts ? [], # observability exporters, when enabled
  }:
    [settings.ports.natsMonitor]
    ++ exporterPorts
    ++ (
      if settings.runs.gateAgent
      then [settings.ports.controllerManagement settings.ports.agentManagement]
      else []
    )
    ++ (
      if settings.probe or null != null
      then [settings.probe.listen.port]
      else []
    );

  extraInputRules = {
    zone, # the result of `normalise`
    settings, # hostSettings of the host
    exporterPorts ? [],
    sshPorts ? [], # services.openssh.ports while sshd is enabled
  }: let
    others = filter (h: h.name != settings.name) (attrValues zone.hosts);
    k = settings.keepalived;
  in
    concatStringsSep "\n" ([
        "# services.bsfg: JetStream cluster routes from the other zone hosts only (TLS, zone certificates)"
        "ip saddr ${set (map (h: h.address) others)} tcp dport ${toString settings.ports.natsCluster} accept"
        "# services.bsfg: NTP between the zone hosts (chrony peers)"
        "ip saddr ${set settings.chrony.peers} udp dport 123 accept"
      ]
      ++ (
        if settings.runs.keepalived
        then [
          "# services.bsfg: VRRP from the other service host, on the coordination interface only"
          "iifname \"${k.interface}\" ip saddr ${set k.unicastPeers} ip protocol 112 accept"
          "# services.bsfg: the controller answers on the VIP only"
          "ip daddr ${zone.vip.address} tcp dport ${toString settings.ports.controller} accept"
        ]
        else []
      )
      ++ [
        "# services.bsfg: monitoring and management (read-only) from the management network only"
        "ip saddr ${zone.managementNetwork} ip daddr ${settings.managementAddress} tcp dport ${set (managementPorts {inherit settings exporterPorts;})} accept"
      ]
      ++ (
        if sshPorts != []
        then [
          "# services.bsfg: SSH from ssh.allowFrom only (services.openssh.openFirewall is off)"
          "ip saddr ${set zone.ssh.allowFrom} tcp dport ${set sshPorts} accept"
        ]
        else []
      ))
    + "\n";

  # The NixOS firewall's table with `extraInputRules` in it.
  ruleset = {
    zone,
    settings,
    exporterPorts ? [],
    # What NixOS opens everywhere (networking.firewall.allowedTCPPorts):
    # nothing, with SSH left to extraInputRules.
    allowedTCPPorts ? [],
    sshPorts ? [22],
  }: let
    allowed =
      if allowedTCPPorts == []
      then ""
      else "    tcp dport ${set allowedTCPPorts} accept\n";
  in ''
    table inet nixos-fw {
      chain input {
        type filter hook input priority filter; policy drop;
        iifname { "lo" } accept comment "trusted interfaces"
        ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }
      }
      chain input-allow {
    ${allowed}    icmp type echo-request accept comment "allow ping"
        icmpv6 type != { nd-redirect, 139 } accept
        ip6 daddr fe80::/64 udp dport 546 accept comment "DHCPv6 client"
    ${extraInputRules {inherit zone settings exporterPorts sshPorts;}}  }
    }
  '';
}
