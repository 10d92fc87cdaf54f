# The small zone the NixOS VM tests boot (tests/*.nix). Same schema as
# hosts/zone.nix; addresses on the test driver's VLAN 1 (interface eth1).
# The client node (192.168.1.10) is not a zone host.
{
  zone = "plant-t";
  tier = "standard";
  hosts = {
    alpha = {
      role = "alpha";
      address = "192.168.1.1";
      prefixLength = 24;
      interface = "eth1";
    };
    beta = {
      role = "beta";
      address = "192.168.1.2";
      prefixLength = 24;
      interface = "eth1";
    };
    gamma = {
      role = "gamma";
      address = "192.168.1.3";
      prefixLength = 24;
      interface = "eth1";
    };
  };
  managementNetwork = "192.168.1.0/24";
  vip = {
    address = "192.168.1.100";
    prefixLength = 24;
  };
  vrrp = {
    routerId = 42;
    version = 3;
    advertIntervalMs = 200;
  };
  # Installed on each node from the test PKI (tests/pki.nix) at boot; the
  # route certificate is each node's own (IP SAN = its address).
  certificates = {
    certificate = "/var/lib/bsfg/tls/controller.pem";
    privateKey = "/var/lib/bsfg/tls/controller.key";
    ca = "/var/lib/bsfg/tls/ca.pem";
    natsRouteCertificate = "/var/lib/bsfg/tls/nats-route.pem";
    natsRoutePrivateKey = "/var/lib/bsfg/tls/nats-route.key";
  };
  # Test-only users whose passwords tests/common.nix installs (the pairs are
  # in tests/nats-users.nix); a site makes its own (hosts/zone.nix).
  nats.users = let
    users = import ./nats-users.nix;
  in {
    controller = {
      passwordFile = "/var/lib/bsfg/secrets/nats-controller-password";
      inherit (users.controller) passwordHash;
    };
    gateAgent = {
      passwordFile = "/var/lib/bsfg/secrets/nats-gate-agent-password";
      inherit (users.gateAgent) passwordHash;
    };
  };
  certificatePolicy = {
    minValidity = "30d";
    policy = "deny";
  };
  classes = {
    operational = {
      max_age = "1d";
      max_bytes = "64 MiB";
      append = ["producer"];
    };
  };
  # The client reads back what it appended through this consumer (it never
  # confirms, so every fetch returns the stream from the start).
  consumers = {
    verifier = {
      source = "store:operational";
      start = "earliest";
      allowed = ["producer"];
    };
  };
}
