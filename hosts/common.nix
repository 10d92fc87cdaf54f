# Shared by the three example hosts: the zone description and site basics.
# REPLACE the marked values for a real site.
{lib, ...}: {
  services.bsfg.zone = import ./zone.nix;
  # Where `bsfgctl commission` makes its round trip (declared in zone.nix).
  services.bsfg.observability.commissioning = {
    class = "commissioning";
    consumer = "verify-commissioning";
  };

  # REPLACE: operator access. Keys only; no passwords on an appliance.
  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };
  users.users.root.openssh.authorizedKeys.keys = [
    # "ssh-ed25519 AAAA... operator@site"
  ];

  # Addresses come from the zone description (services.bsfg.manageNetwork).
  networking.useDHCP = false;
  time.timeZone = "UTC";
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";

  # The NixOS release this configuration was first installed with; see
  # `man configuration.nix`. Do not change it on an installed host.
  system.stateVersion = "26.05";
}
