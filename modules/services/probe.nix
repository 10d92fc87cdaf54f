# gamma's service probe (zone setting `probe`): nixpkgs' blackbox exporter
# on the management address, with the configuration modules/lib/probe.nix
# renders (gRPC and Connect health of the controller on the VIP, with the
# probe's own client certificate; Prometheus job bsfg-service-probe, alert
# BsfgServiceProbeFailing). The certificate, its key and the zone CA reach
# the unit by LoadCredential= (systemd reads them as root; the exporter
# runs as nixpkgs' DynamicUser): the configuration in the Nix store names
# only the /run/credentials paths, never a secret. Configuration and unit
# additions are rendered by the zone library; this module assigns them.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.bsfg;
  p = cfg.settings.probe or null;
  sc = cfg.settings.units.prometheus-blackbox-exporter.serviceConfig;
in {
  config = lib.mkIf (cfg.enable && p != null) {
    services.prometheus.exporters.blackbox = {
      enable = true;
      inherit (p.listen) port;
      listenAddress = p.listen.address;
      # enableConfigCheck (default true) runs `blackbox_exporter
      # --config.check` on it at build time.
      configFile = pkgs.writeText "bsfg-probe-blackbox.yml" p.configText;
    };
    # What the appliance adds to nixpkgs' unit (modules/lib/units.nix):
    # the credentials, no capabilities, a system-call filter. LoadCredential=
    # copies the files when the unit starts: restart it after the probe
    # certificate is renewed (docs/runbooks/certificate-rotation.md).
    systemd.services.prometheus-blackbox-exporter.serviceConfig = {
      inherit (sc) LoadCredential SystemCallFilter ProtectProc ProcSubset;
      AmbientCapabilities = lib.mkForce sc.AmbientCapabilities;
      CapabilityBoundingSet = lib.mkForce sc.CapabilityBoundingSet;
    };
  };
}
