# Shared by the three example hosts: the zone description and site basics.
# REPLACE the marked values for a real site.
{lib, ...}: {
  services.bsfg.zone = import ./zone.nix;
  # Where `bsfgctl commission` makes its round trip (declared in zone.nix).
  services.bsfg.observability.commissioning = {
    class = "commissioning";
    consumer = "verify-commissioning";
  };

  # Operator access: SSH keys only, no passwords on an appliance. The keys
  # are in hosts/authorized_keys (REPLACE the example key there); a host
  # with no key for root (or a wheel user) fails evaluation instead of
  # locking you out after `nixos-rebuild switch --target-host root@...`.
  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };
  users.users.root.openssh.authorizedKeys.keyFiles = [./authorized_keys];

  # Addresses come from the zone description (services.bsfg.manageNetwork).
  networking.useDHCP = false;
  time.timeZone = "UTC";
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";

  # The NixOS release this configuration was first installed with; see
  # `man configuration.nix`. Do not change it on an installed host.
  system.stateVersion = "26.05";
}
