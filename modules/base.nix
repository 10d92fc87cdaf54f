# Host basics every zone host needs: its zone address, time sync (TLS
# validity, lease timing and log correlation depend on it: seed "Physical
# Security and Operations Assumptions"), the operator CLI, and a way in for
# the operator: a host that nobody can log into after `nixos-rebuild switch`
# is refused at evaluation.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption types;
  cfg = config.services.bsfg;
  s = cfg.settings;

  # Administrators: root and members of wheel.
  admins = lib.filter (u: u.name == "root" || builtins.elem "wheel" (u.extraGroups or [])) (builtins.attrValues config.users.users);
  # Keys in keyFiles given as Nix paths are read here, so an empty file does
  # not count; a string path is on the host and taken on trust.
  keyLines = file:
    if builtins.isPath file
    then lib.filter (l: l != "" && !(lib.hasPrefix "#" l)) (lib.splitString "\n" (builtins.readFile file))
    else [file];
  keysOf = u: (u.openssh.authorizedKeys.keys or []) ++ lib.concatMap keyLines (u.openssh.authorizedKeys.keyFiles or []);
  hasPassword = u: lib.any (a: (u.${a} or null) != null) ["hashedPassword" "hashedPasswordFile" "initialHashedPassword" "password" "initialPassword"];
  sshWayIn = config.services.openssh.enable && lib.any (u: keysOf u != []) admins;
  passwordWayIn = lib.any hasPassword admins;
in {
  options.services.bsfg.requireOperatorAccess = mkOption {
    type = types.bool;
    default = true;
    description = ''
      Whether to refuse a host that no administrator can log into: with
      `services.openssh.enable`, root or a member of wheel needs an entry in
      `users.users.<name>.openssh.authorizedKeys.keys` (or a non-empty
      `keyFiles`), or one of them a declared password. Turn off only where
      another way in exists that NixOS cannot see (a test driver's backdoor).
    '';
  };

  config = lib.mkIf cfg.enable {
    # Addresses (zone segment, management network, the dedicated VRRP
    # segment), static routes, default gateway and DNS, as the zone library
    # computes them (modules/lib/network.nix).
    networking = let
      n = (import ./lib/network.nix).networking s.network;
    in {
      interfaces = lib.mkIf cfg.manageNetwork n.interfaces;
      defaultGateway = lib.mkIf (cfg.manageNetwork && n.defaultGateway != null) n.defaultGateway;
      nameservers = lib.mkIf cfg.manageNetwork n.nameservers;
    };

    # The site's servers, the other two hosts as peers, orphan mode.
    services.chrony = {
      enable = true;
      servers = lib.mkIf (s.chrony.servers != []) s.chrony.servers;
      inherit (s.chrony) extraConfig;
    };

    environment.systemPackages = [cfg.packages.cli];

    assertions = [
      {
        assertion = !cfg.requireOperatorAccess || sshWayIn || passwordWayIn;
        message = "services.bsfg: nobody could log into ${cfg.hostName} after deploying it: no administrator (root or a member of wheel) has an SSH key (users.users.root.openssh.authorizedKeys.keys or .keyFiles, with services.openssh.enable) or a password. Add your public key (the example hosts read hosts/authorized_keys), or set services.bsfg.requireOperatorAccess = false if there is another way in.";
      }
    ];
  };
}
