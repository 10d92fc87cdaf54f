# Host basics every zone host needs: its zone address, time sync (TLS
# validity, lease timing and log correlation depend on it: seed "Physical
# Security and Operations Assumptions"), the operator CLI.
{
  config,
  lib,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  zone = cfg.normalisedZone;
in {
  config = lib.mkIf cfg.enable {
    networking.interfaces = lib.mkIf cfg.manageNetwork {
      ${s.interface}.ipv4.addresses = [
        {
          inherit (s) address prefixLength;
        }
      ];
    };

    services.chrony = {
      enable = true;
      servers = lib.mkIf (zone.timeServers != []) zone.timeServers;
    };

    environment.systemPackages = [cfg.packages.cli];
  };
}
