# What every VM test shares: the nodes (alpha, beta, gamma built ONLY from
# the flake's nixosModules plus tests/zone.nix; a client node holding a
# producer certificate), the test PKI, and the Python helpers.
#
# A scenario is a Python file in tests/scripts/; its test script is
#   <generated constants> + tests/scripts/common.py + tests/scripts/<scenario>.py
{
  pkgs,
  lib,
  nixosModules,
}: let
  zoneDescription = import ./zone.nix;
  zoneLib = import ../modules/lib/zone.nix;
  zone = zoneLib.normalise zoneDescription;
  clientAddress = "192.168.1.10";

  pki = pkgs.callPackage ./pki.nix {
    vip = zone.vip.address;
    routeHosts = builtins.mapAttrs (_: h: h.address) zone.hosts;
    routeIdentity = (import ../modules/lib/nats.nix).routeIdentity zone;
  };

  # The NATS passwords whose hashes tests/zone.nix holds (tests/nats-users.nix).
  natsUsers = import ./nats-users.nix;
  passwordFile = name: pkgs.writeText "triad-test-${name}" natsUsers.${name}.password;

  # Test-only: install the generated certificates and the NATS passwords
  # where the zone description says they are, before anything reads them
  # (systemd-tmpfiles "C" copies once; the gates scenario swaps files and
  # restarts the agent), with the modes of docs/runbooks/deployment.md: the
  # gate agent reads the public certificate and CA itself and looks whether
  # the key exists.
  pkiModule = name: {
    environment.etc."test-pki".source = pki;
    systemd.tmpfiles.rules = [
      "d /var/lib/bsfg/tls 0755 root root -"
      "C /var/lib/bsfg/tls/ca.pem - - - - ${pki}/ca.pem"
      "C /var/lib/bsfg/tls/controller.pem - - - - ${pki}/controller.pem"
      "C /var/lib/bsfg/tls/controller.key - - - - ${pki}/controller.key"
      "z /var/lib/bsfg/tls/controller.key 0600 root root -"
      # This node's own route certificate (nats.service, LoadCredential=).
      "C ${zone.certificates.natsRouteCertificate} - - - - ${pki}/nats-route-${name}.pem"
      "C ${zone.certificates.natsRoutePrivateKey} - - - - ${pki}/nats-route-${name}.key"
      "z ${zone.certificates.natsRoutePrivateKey} 0600 root root -"
      # Each daemon's NATS password (LoadCredential=), root-only like a site's.
      "d /var/lib/bsfg/secrets 0711 root root -"
      "C ${zone.nats.users.controller.passwordFile} - - - - ${passwordFile "controller"}"
      "z ${zone.nats.users.controller.passwordFile} 0400 root root -"
      "C ${zone.nats.users.gateAgent.passwordFile} - - - - ${passwordFile "gateAgent"}"
      "z ${zone.nats.users.gateAgent.passwordFile} 0400 root root -"
    ];
  };

  zoneNode = name: {lib, ...}: let
    isService = zone.hosts.${name}.role != "gamma";
  in {
    imports = [nixosModules.${zone.hosts.${name}.role} (pkiModule name)];
    services.bsfg.zone = zoneDescription;

    # One NIC on VLAN 1 without the driver's automatic address: the zone
    # module assigns the address from tests/zone.nix.
    virtualisation.interfaces.eth1.vlan = 1;
    virtualisation.memorySize = 1536;
    networking.useDHCP = false;

    # A real /artifacts mount on the service hosts, so that the artifact
    # gate can be tested by unmounting it.
    virtualisation.emptyDiskImages = lib.optional isService 256;
    virtualisation.fileSystems = lib.mkIf isService {
      "/artifacts" = {
        device = "/dev/vdb";
        fsType = "ext4";
        autoFormat = true;
      };
    };

    # The test driver's backdoor is the way in; the nodes have no SSH.
    services.bsfg.requireOperatorAccess = false;

    # openssl: the gates scenario signs a short-lived certificate at run time.
    environment.systemPackages = with pkgs; [curl jq natscli iproute2 openssl];
  };

  clientNode = {config, ...}: {
    imports = [nixosModules.default];
    virtualisation.interfaces.eth1.vlan = 1;
    networking.useDHCP = false;
    networking.interfaces.eth1.ipv4.addresses = [
      {
        address = clientAddress;
        prefixLength = 24;
      }
    ];
    environment.etc."test-pki".source = pki;
    # bsfgctl, from the flake's packages (wired by nixosModules.default).
    environment.systemPackages = [pkgs.curl pkgs.jq config.services.bsfg.packages.cli];
  };

  # Constants the Python helpers need, generated from the same zone.
  constants = {
    inherit (zone) zone;
    vip = zone.vip.address;
    inherit (zone) ports;
    hosts = builtins.mapAttrs (_: h: {inherit (h) role address managementAddress;}) zone.hosts;
    client = clientAddress;
    minValidity = zone.certificatePolicy.minValidity;
  };

  mkTest = {
    name,
    # Generous: without KVM the VMs run 5-10x slower (docs/testing.md).
    globalTimeout ? 3600,
  }:
    pkgs.testers.runNixOSTest {
      name = "bsfg-${name}";
      inherit globalTimeout;
      nodes = {
        alpha = zoneNode "alpha";
        beta = zoneNode "beta";
        gamma = zoneNode "gamma";
        client = clientNode;
      };
      testScript = lib.concatStringsSep "\n" [
        "import json"
        "ZONE = json.loads(${builtins.toJSON (builtins.toJSON constants)})"
        (builtins.readFile ./scripts/common.py)
        (builtins.readFile ./scripts/${builtins.replaceStrings ["-"] ["_"] name}.py)
      ];
    };
in {
  inherit mkTest pki constants;
}
