# The example zone: ONE description shared by
#   * nixosConfigurations.{alpha,beta,gamma} (flake.nix -> hosts/<host>/), and
#   * the zone simulator (modules/lib/simulator.nix reads this file).
# Plain data, no functions: replace the addresses, interface names and
# certificate paths with your site's values. Every setting is documented in
# modules/lib/README.md; invalid values fail evaluation with a "zone: ..."
# message that names the setting.
{
  zone = "plant-a";

  # Contract section 6: "standard" keeps nats-server's default sync
  # interval, "critical" fsyncs every acknowledged write (sync_interval: always).
  tier = "standard";

  # The three hosts, keyed by host name. `address` is on the zone segment
  # that carries JetStream cluster traffic and, between alpha and beta, VRRP
  # and the VIP. REPLACE: addresses and interface names of your hardware.
  hosts = {
    alpha = {
      role = "alpha";
      address = "10.20.0.11";
      prefixLength = 24;
      interface = "eno1";
      # Monitoring and operations only (NATS monitoring, exporters, the
      # read-only management endpoints, SSH from operators).
      managementAddress = "10.30.0.11";
      managementInterface = "eno2";
    };
    beta = {
      role = "beta";
      address = "10.20.0.12";
      prefixLength = 24;
      interface = "eno1";
      # Monitoring and operations only (NATS monitoring, exporters, the
      # read-only management endpoints, SSH from operators).
      managementAddress = "10.30.0.12";
      managementInterface = "eno2";
    };
    gamma = {
      role = "gamma";
      address = "10.20.0.13";
      prefixLength = 24;
      interface = "eno1";
      # Monitoring and operations only (NATS monitoring, exporters, the
      # read-only management endpoints, SSH from operators).
      managementAddress = "10.30.0.13";
      managementInterface = "eno2";
    };
  };

  # The management network: a segment of its own (each host's
  # managementAddress on managementInterface), the only source the firewall
  # admits to NATS monitoring, exporters and the management endpoints.
  # Producers and peer zones on the service network (10.20.0.0/24) reach
  # the VIP's BoundaryService and nothing else (docs/threat-model.md).
  managementNetwork = "10.30.0.0/24";

  # Who may reach SSH on the hosts: by default (this line left out) the
  # management network alone; the firewall admits no other source. Add a
  # jump host or an operators' network here, never the producers'.
  ssh.allowFrom = ["10.30.0.0/24"];

  # The zone VIP: the only address producers and peer zones use.
  vip = {
    address = "10.20.0.100";
    prefixLength = 24;
  };

  # VRRPv3 with 0.2 s adverts: the standby declares the master dead after
  # ~3 adverts (0.6 s plus skew) instead of ~3 s with VRRPv2's 1 s minimum.
  vrrp = {
    routerId = 51;
    version = 3;
    advertIntervalMs = 200;
    priorities = {
      alpha = 150;
      beta = 100;
    };
  };

  # REPLACE: where the controller certificate, its key and the zone CA live
  # on alpha and beta. Strings, never Nix paths: the files are read on the
  # host through systemd LoadCredential= and never enter the Nix store.
  certificates = {
    certificate = "/var/lib/bsfg/tls/controller.pem";
    privateKey = "/var/lib/bsfg/tls/controller.key";
    # The trust bundle (the zone CA; old and new during `bsfgctl pki rollover`).
    ca = "/var/lib/bsfg/tls/ca.pem";
    # Every host's (gamma's too) certificate for the JetStream cluster
    # routes, from the same zone CA: IP SAN = the host's `address`, DNS SAN
    # = "nats-route.<zone>" (nats-server admits a route only with both).
    natsRouteCertificate = "/var/lib/bsfg/tls/nats-route.pem";
    natsRoutePrivateKey = "/var/lib/bsfg/tls/nats-route.key";
  };
  # The service probe on gamma (blackbox exporter on its management
  # address, :9115): gRPC and Connect health on the VIP with a client
  # certificate of its own, identity "plant-a-probe" (in no ACL: the
  # controller admits it to the health service only). `bsfgctl pki issue`
  # issues the certificate and stages it for gamma at these paths; the
  # exporter reads them through LoadCredential=. Prometheus scrapes it
  # (job bsfg-service-probe, /etc/bsfg/monitoring/scrape-probe.yml).
  probe = {
    certificate = "/var/lib/bsfg/tls/probe.pem";
    privateKey = "/var/lib/bsfg/tls/probe.key";
  };
  certificatePolicy = {
    minValidity = "30d";
    policy = "deny";
  };

  # The zone lease (one writer per zone, contract section 7) is left to its
  # defaults, which follow the adverts: with sub-second adverts a 500 ms TTL
  # (renewed every 100 ms, fenced 125 ms early) that expires before the VIP
  # has moved; with 1 s adverts 1 s / 200 ms / 250 ms. Set lease.{bucket,
  # ttl, renewInterval, safetyMargin} only to override them.

  # The NATS system account's user: the active controller uses it to move
  # the JetStream meta leader off its own host, so an alpha crash never
  # waits for a meta election. REPLACE both: generate one password for the
  # zone and install it on alpha and beta (root-only, 0400), e.g.
  #   head -c 32 /dev/urandom | base64 > /var/lib/bsfg/secrets/nats-system-password
  # and put its bcrypt hash here (the Nix store is world-readable: the
  # password itself never goes there):
  #   mkpasswd -m bcrypt -R 11 < /var/lib/bsfg/secrets/nats-system-password
  # The controller reads the file through LoadCredential=. Remove the block
  # (or set systemUser = null) to run without NATS accounts; the meta leader
  # then stays wherever JetStream elects it.
  nats.systemUser = {
    passwordFile = "/var/lib/bsfg/secrets/nats-system-password";
    passwordHash = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
  };
  # One NATS user per daemon, each allowed only the JetStream subjects it
  # needs (modules/lib/nats.nix); nothing connects without a password.
  # REPLACE every hash: the ones below are placeholders, the same in every
  # copy of this repository; a daemon whose password file does not match
  # its hash is refused by NATS ("Authorization Violation"). For each
  # daemon, one password (controller and gate agent: on alpha and beta;
  # backup: on gamma), root-only, 0400, read through LoadCredential=:
  #   head -c 32 /dev/urandom | base64 > nats-controller-password
  #   mkpasswd -m bcrypt -R 11 < nats-controller-password
  # (likewise nats-gate-agent-password, nats-backup-password); put each printed "$2b$11$..." hash
  # here and install the files as docs/runbooks/deployment.md (section 4)
  # says. The VM tests do the same with fixed test passwords
  # (tests/nats-users.nix).
  nats.users = {
    controller = {
      passwordFile = "/var/lib/bsfg/secrets/nats-controller-password";
      passwordHash = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
    };
    gateAgent = {
      passwordFile = "/var/lib/bsfg/secrets/nats-gate-agent-password";
      passwordHash = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
    };
    # The snapshots' user (bsfg-backup.service on gamma, `bsfgctl backup`
    # and `restore`): its password file on gamma only.
    backup = {
      passwordFile = "/var/lib/bsfg/secrets/nats-backup-password";
      passwordHash = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
    };
  };

  # Scheduled snapshots of every stream, taken on gamma (docs/runbooks/
  # jetstream-backup-restore.md). Copy the directory off the zone too.
  backup = {
    schedule = "daily";
    directory = "/var/lib/bsfg-backup/snapshots";
    keep = 7;
  };

  # Scheduled snapshots of the artifact store, taken on alpha and beta each
  # of its own /artifacts (docs/runbooks/jetstream-backup-restore.md). Put
  # the directory on another disk than /artifacts, and copy it off the zone.
  artifactBackup = {
    schedule = "daily";
    directory = "/var/lib/bsfg-artifact-backup/snapshots";
    keep = 7;
  };

  # Store buffer classes, consumers, artifact buckets and peer zones, in the
  # controller's own schema (crates/bsfg-core/src/config/controller.rs).
  classes = {
    operational = {
      max_age = "7d";
      max_bytes = "10 GiB";
      append = ["mes-producer"];
    };
    audit = {
      max_age = "30d";
      max_bytes = "5 GiB";
      append = ["mes-producer"];
    };
    # `bsfgctl commission`'s non-destructive round trip (docs/bsfgctl.md); the
    # operator's certificate names bsfg-operator.
    commissioning = {
      max_age = "1d";
      max_bytes = "64 MiB";
      append = ["bsfg-operator"];
    };
  };
  consumers = {
    erp-orders = {
      source = "store:operational/order";
      start = "earliest";
      allowed = ["erp-reader"];
    };
    from-enterprise = {
      source = "forward:enterprise";
      allowed = ["mes-reader"];
    };
    verify-commissioning = {
      source = "store:commissioning";
      allowed = ["bsfg-operator"];
    };
  };
  buckets = {
    drawings = {
      read = ["erp-reader"];
      write = ["mes-producer"];
    };
  };
  peers = {
    enterprise = {
      identity = "enterprise-bsfg";
      endpoint = "https://10.10.0.100:9443";
      consumer = "to-plant-a";
    };
  };

  # REPLACE: the site's routers and DNS. Every next hop must be on a segment
  # of every host (the zone segment, or the management network). Routes
  # give the path to each peer zone (here: the enterprise zone behind the
  # boundary firewall); no default gateway (null) keeps the zone off every
  # other network.
  network = {
    defaultGateway = "10.20.0.1";
    nameservers = ["10.30.0.53"];
    routes = [
      {
        destination = "10.10.0.0/24";
        via = "10.20.0.254";
      }
    ];
  };

  # REPLACE: your site's NTP servers. The three hosts also peer with each
  # other (chrony), and without any upstream they keep one time among
  # themselves at time.localStratum (default 10; orphan mode). Empty
  # servers: the NixOS default pool (unreachable on an isolated site; the
  # zone then runs on its own time).
  time.servers = ["10.30.0.1"];
}
