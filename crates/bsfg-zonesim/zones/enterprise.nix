# The peer zone of the replication drill: the zone the example zone
# (hosts/zone.nix, `peers.enterprise`) pulls facts from. A zone description
# like any other, evaluated by modules/lib/simulator.nix; the simulator runs
# its alpha's nats-server and controller on one node (`<instance>-peer`),
# which is why its streams are R1 (`store.replicas`). What the receiving
# zone expects of it is checked against this file before the drill starts:
# the zone name, the endpoint (VIP and controller port), the consumer the
# zone pulls from, admitting the zone's controller identity.
{
  zone = "enterprise";

  hosts = {
    alpha = {
      role = "alpha";
      address = "10.10.0.11";
      prefixLength = 24;
      interface = "eth0";
    };
    beta = {
      role = "beta";
      address = "10.10.0.12";
      prefixLength = 24;
      interface = "eth0";
    };
    gamma = {
      role = "gamma";
      address = "10.10.0.13";
      prefixLength = 24;
      interface = "eth0";
    };
  };
  managementNetwork = "10.10.0.0/24";
  vip = {
    address = "10.10.0.100";
    prefixLength = 24;
  };
  vrrp = {
    routerId = 52;
    version = 3;
    advertIntervalMs = 200;
    priorities = {
      alpha = 150;
      beta = 100;
    };
  };
  certificates = {
    certificate = "/var/lib/bsfg/tls/controller.pem";
    privateKey = "/var/lib/bsfg/tls/controller.key";
    ca = "/var/lib/bsfg/tls/ca.pem";
    natsRouteCertificate = "/var/lib/bsfg/tls/nats-route.pem";
    natsRoutePrivateKey = "/var/lib/bsfg/tls/nats-route.key";
  };
  nats.users = {
    controller = {
      passwordFile = "/var/lib/bsfg/secrets/nats-controller-password";
      passwordHash = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
    };
    gateAgent = {
      passwordFile = "/var/lib/bsfg/secrets/nats-gate-agent-password";
      passwordHash = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
    };
  };

  # One node: every stream and bucket on its one server.
  store.replicas = 1;

  classes = {
    operational = {
      max_age = "1d";
      max_bytes = "256 MiB";
      append = ["enterprise-producer"];
    };
  };
  consumers = {
    # What plant-a's controller pulls (its certificate identity, as the
    # zone library names it by default: <zone>-bsfg, certificates.controllerIdentity).
    to-plant-a = {
      source = "store:operational";
      start = "earliest";
      allowed = ["plant-a-bsfg"];
    };
    # The drill's read-back of what this zone stored, and when.
    zonesim-audit = {
      source = "store:operational";
      start = "earliest";
      allowed = ["enterprise-producer"];
    };
  };
  peers = {
    plant-a = {identity = "plant-a-bsfg";};
  };

  logging = {
    format = "text";
    filter = "info,bsfg_controller=debug";
  };
}
