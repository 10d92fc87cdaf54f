# The installer image of one host. flake.nix builds it on nixpkgs'
# installer/cd-dvd/installation-cd-minimal.nix and disko's NixOS module;
# this module adds what makes it the host's installer: the host's system
# closure (isoImage.storeContents), disko's script for the role's layout on
# the host's declared disks, `bsfgctl`, and /etc/bsfg/install.json, which
# `bsfgctl install run` reads (modules/lib/install.nix). It runs none of
# the zone's services; it has the host's addresses and the operators' SSH
# keys, so the installation can be driven over SSH, and nothing in it
# needs a network beyond the site's.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.bsfg.installer;
  s = cfg.settings;
  hasDisks = s.disko != null;
  manifest =
    (import ./lib/install.nix).manifest {
      inherit (cfg) zone;
      settings = s;
    }
    // {
      system = "${cfg.system}";
      # Wipes, partitions, formats and mounts (under mountPoint) exactly
      # the layout's disks; `bsfgctl install run` passes --yes-wipe-all-disks
      # once the operator has confirmed its own plan.
      disko =
        if hasDisks
        then "${config.system.build.destroyFormatMount}/bin/disko-destroy-format-mount"
        else null;
    };
in {
  options.services.bsfg.installer = {
    enable = mkEnableOption "the installer image of one zone host (`bsfgctl install run`)";
    zone = mkOption {
      type = types.attrs;
      description = "The zone description as written (hosts/zone.nix): names the secrets the host needs.";
    };
    settings = mkOption {
      type = types.attrs;
      description = ''
        The host's `services.bsfg.settings` (modules/lib/zone.nix
        `hostSettings`): its role, addresses, declared disks and their
        disko layout, its units' credentials.
      '';
    };
    system = mkOption {
      type = types.package;
      description = ''
        The host's `system.build.toplevel`. Its closure is on the image, and
        `bsfgctl install run` installs exactly it (`nixos-install --system`),
        so the installation builds and downloads nothing.
      '';
    };
    cli = mkOption {
      type = types.package;
      description = "The bsfgctl package (it runs the installation).";
    };
  };

  config = mkIf cfg.enable {
    # The role's layout, for disko's scripts only: the installer's own file
    # systems stay the image's (the installed host mounts by label).
    disko.devices = mkIf hasDisks s.disko;
    disko.enableConfig = false;

    isoImage.storeContents = [cfg.system];
    environment.etc."bsfg/install.json".text = builtins.toJSON manifest;
    environment.systemPackages = [cfg.cli];

    # The host's own addresses, routes, gateway and DNS (the definitions
    # modules/base.nix assigns), so the workstation reaches it where it will live.
    networking = let
      n = (import ./lib/network.nix).networking s.network;
    in {
      hostName = "${s.name}-installer";
      useDHCP = false;
      inherit (n) interfaces nameservers;
      defaultGateway = mkIf (n.defaultGateway != null) n.defaultGateway;
    };
  };
}
