# Invalid zone descriptions and the message each must fail with.
# tests/lib/run.sh evaluates `cases.<name>.result` for every case, expects a
# non-zero exit, and checks that the error output contains `expect`.
let
  lib = import ../../modules/lib/zone.nix;
  fx = import ./fixtures.nix;
  case = expect: desc: {
    inherit expect;
    # Force everything a host computes, so errors in lazily evaluated
    # sections surface too.
    result = builtins.toJSON (lib.allHosts {
      zone = lib.normalise desc;
      pathsFor = _: lib.nixosPaths;
    });
  };
  hostsWithout = name: builtins.removeAttrs fx.base.hosts [name];
  withHostDisks = name: disks: fx.with' {hosts = fx.base.hosts // {${name} = fx.base.hosts.${name} // {inherit disks;};};};
in {
  cases = {
    wrong_role = case "hosts.gamma.role = \"delta\" is not a role" (fx.withHost "gamma" {role = "delta";});
    duplicate_role = case "role \"alpha\" is given to several hosts" (fx.withHost "beta" {role = "alpha";});
    missing_role_two_hosts = case "exactly three hosts" (fx.with' {hosts = hostsWithout "gamma";});
    four_hosts = case "exactly three hosts" (fx.with' {
      hosts =
        fx.base.hosts
        // {
          delta = fx.base.hosts.gamma // {address = "10.20.0.14";};
        };
    });
    probe_identity_in_an_acl = case "probe.identity = \"mes-producer\" is named in an ACL" (fx.with' {probe = fx.base.probe // {identity = "mes-producer";};});
    probe_identity_is_the_controllers = case "probe.identity = \"plant-a-bsfg\" is the controller's identity" (fx.with' {probe = fx.base.probe // {identity = "plant-a-bsfg";};});
    probe_unknown_setting = case "unknown setting(s) probe.port" (fx.with' {probe = fx.base.probe // {port = 1;};});
    probe_timeout_too_long = case "probe.timeout = \"5m\": between 100ms and 60s" (fx.with' {probe = fx.base.probe // {timeout = "5m";};});
    probe_key_in_the_store = case "probe.privateKey = \"/nix/store/" (fx.with' {probe = fx.base.probe // {privateKey = "${builtins.storeDir}/x-probe.key";};});
    artifact_backup_keeps_nothing = case "artifactBackup.keep = 0: keep at least 1 snapshot" (fx.with' {artifactBackup = {keep = 0;};});
    artifact_backup_unknown_setting = case "unknown setting(s) artifactBackup.retention; known: artifactBackup.schedule" (fx.with' {artifactBackup = {retention = 3;};});
    artifact_backup_no_schedule = case "artifactBackup.schedule = \"\": a systemd calendar expression" (fx.with' {artifactBackup = {schedule = "";};});
    artifact_backup_not_a_set = case "artifactBackup must be an attribute set" (fx.with' {artifactBackup = "daily";});
    artifact_backup_onto_the_store = case "artifactBackup.directory = \"/artifacts/snapshots\" is inside /artifacts" (fx.with' {artifactBackup = {directory = "/artifacts/snapshots";};});
    artifact_backup_relative_directory = case "artifactBackup.directory" (fx.with' {artifactBackup = {directory = "snapshots";};});
    duplicate_address = case "duplicate host address 10.20.0.11" (fx.withHost "gamma" {address = "10.20.0.11";});
    bad_address = case "hosts.beta.address = \"10.20.0.300\" is not an IPv4 address" (fx.withHost "beta" {address = "10.20.0.300";});
    vip_outside_subnet = case "vip.address 10.21.0.100 is outside the service hosts' subnet" (fx.withVip {address = "10.21.0.100";});
    vip_equals_host = case "vip.address 10.20.0.12 equals a host address" (fx.withVip {address = "10.20.0.12";});
    vip_broadcast = case "network or broadcast address" (fx.withVip {address = "10.20.0.255";});
    service_hosts_apart = case "are not on one subnet" (fx.withHost "beta" {address = "10.20.1.12";});
    priority_tie = case "vrrp.priorities tie (alpha = beta = 100)" (fx.withVrrp {
      priorities = {
        alpha = 100;
        beta = 100;
      };
    });
    priority_inverted = case "alpha (90) must be higher than beta (100)" (fx.withVrrp {
      priorities = {
        alpha = 90;
        beta = 100;
      };
    });
    priority_255 = case "must be integers in 1..254" (fx.withVrrp {priorities = {alpha = 255;};});
    router_id_zero = case "vrrp.routerId = 0 must be an integer in 1..255" (fx.withVrrp {routerId = 0;});
    router_id_256 = case "vrrp.routerId = 256 must be an integer in 1..255" (fx.withVrrp {routerId = 256;});
    vrrp2_subsecond = case "VRRPv2 advertises in whole seconds" (fx.withVrrp {version = 2;});
    vrrp3_not_centiseconds = case "use a multiple of 10 ms" (fx.withVrrp {advertIntervalMs = 205;});
    zone_name_dot = case "zone id (`zone`) \"plant.a\" is not a valid name" (fx.with' {zone = "plant.a";});
    zone_name_space = case "is not a valid name" (fx.with' {zone = "plant a";});
    host_name_wildcard = case "host name \"al*pha\" is not a valid name" (fx.with' {
      hosts = hostsWithout "alpha" // {"al*pha" = fx.base.hosts.alpha;};
    });
    class_name_gt = case "stream class \"ops>\" is not a valid name" (fx.with' {classes = {"ops>" = {};};});
    consumer_name_dot = case "consumer \"erp.orders\" is not a valid name" (fx.with' {
      consumers = {
        "erp.orders" = {source = "store:operational";};
      };
    });
    bucket_name_upper = case "bucket \"Drawings\" is not a valid name" (fx.with' {buckets = {Drawings = {};};});
    no_classes = case "declare at least one stream class" (fx.with' {classes = {};});
    consumer_unknown_class = case "names unknown stream class \"telemetry\"" (fx.with' {
      consumers = {x = {source = "store:telemetry";};};
    });
    peer_is_self = case "a zone cannot be its own peer" (fx.with' {peers = fx.base.peers // {plant-a = {identity = "plant-a-bsfg";};};});
    peer_endpoint_alone = case "endpoint and consumer go together" (fx.with' {
      peers = {
        enterprise = {
          identity = "enterprise-bsfg";
          endpoint = "https://10.10.0.100:9443";
        };
      };
    });
    tier_unknown = case "tier = \"gold\" is not a durability tier" (fx.with' {tier = "gold";});
    lease_renew_too_slow = case "leaves fewer than two renewals" (fx.withLease {renewInterval = "600ms";});
    lease_margin_too_long = case "must be shorter than lease.ttl" (fx.withLease {safetyMargin = "1s";});
    lease_bad_duration = case "lease.ttl = \"one second\" is not a duration" (fx.withLease {ttl = "one second";});
    lease_margin_over_default_ttl = case "lease.safetyMargin (600ms) must be shorter than lease.ttl (500ms)" (fx.withLease {safetyMargin = "600ms";});
    nats_hash_not_bcrypt = case "nats.systemUser.passwordHash must be the bcrypt hash" (fx.with' {
      nats = fx.base.nats // {systemUser = fx.base.nats.systemUser // {passwordHash = "s3cret";};};
    });
    nats_password_as_nix_path = case "nats.systemUser.passwordFile is a Nix path" (fx.with' {
      nats = fx.base.nats // {systemUser = fx.base.nats.systemUser // {passwordFile = ./fixtures.nix;};};
    });
    nats_password_file_missing = case "nats.systemUser.passwordFile = null must be an absolute path string" (fx.with' {
      nats = fx.base.nats // {systemUser = builtins.removeAttrs fx.base.nats.systemUser ["passwordFile"];};
    });
    nats_unknown_setting = case "unknown setting(s) nats.systemuser" (fx.with' {nats.systemuser = {};});
    bad_controller_identity = case "certificates.controllerIdentity \"a b\" is not a valid certificate identity" (fx.with' {
      certificates = fx.base.certificates // {controllerIdentity = "a b";};
    });
    key_in_store = case "certificates.privateKey = \"/nix/store/0000000000000000000000000000000a-key.pem\" is in the Nix store" (fx.with' {
      certificates = fx.base.certificates // {privateKey = "/nix/store/0000000000000000000000000000000a-key.pem";};
    });
    route_key_in_store = case "certificates.natsRoutePrivateKey = \"/nix/store/x-route.key\" is in the Nix store" (fx.with' {
      certificates = fx.base.certificates // {natsRoutePrivateKey = "/nix/store/x-route.key";};
    });
    nats_password_in_store = case "nats.users.gateAgent.passwordFile = \"/nix/store/x-pw\" is in the Nix store" (fx.with' {
      nats = fx.base.nats // {users = fx.base.nats.users // {gateAgent = fx.base.nats.users.gateAgent // {passwordFile = "/nix/store/x-pw";};};};
    });
    # --- network and time (modules/lib/network.nix)
    gateway_not_ipv4 = case "network.defaultGateway = \"10.20.0\" must be an IPv4 address" (fx.with' {network = {defaultGateway = "10.20.0";};});
    gateway_off_segment = case "network.defaultGateway 10.99.0.1 is on no segment of host alpha" (fx.with' {network = {defaultGateway = "10.99.0.1";};});
    nameserver_not_ipv4 = case "network.nameservers: \"dns.site\" is not an IPv4 address" (fx.with' {network = {nameservers = ["10.30.0.53" "dns.site"];};});
    network_unknown = case "unknown setting(s) network.gateway" (fx.with' {network = {gateway = "10.20.0.1";};});
    route_bad_destination = case "network.routes.0.destination = \"10.10.0.0\" must be an IPv4 network in CIDR form" (fx.with' {
      network = {
        routes = [
          {
            destination = "10.10.0.0";
            via = "10.20.0.254";
          }
        ];
      };
    });
    route_not_network_address = case "network.routes.0.destination = \"10.10.0.5/24\": 10.10.0.5 is not the network address" (fx.with' {
      network = {
        routes = [
          {
            destination = "10.10.0.5/24";
            via = "10.20.0.254";
          }
        ];
      };
    });
    route_default = case "network.routes.0.destination 0.0.0.0/0 is the default route" (fx.with' {
      network = {
        routes = [
          {
            destination = "0.0.0.0/0";
            via = "10.20.0.254";
          }
        ];
      };
    });
    route_via_off_segment = case "network.routes.1.via 10.21.0.1 is on no segment of host alpha" (fx.with' {
      network = {
        routes = [
          {
            destination = "10.10.0.0/24";
            via = "10.20.0.254";
          }
          {
            destination = "10.11.0.0/24";
            via = "10.21.0.1";
          }
        ];
      };
    });
    route_unknown_key = case "unknown setting(s) network.routes.0.gateway" (fx.with' {
      network = {
        routes = [
          {
            destination = "10.10.0.0/24";
            gateway = "10.20.0.254";
          }
        ];
      };
    });
    vrrp_segment_no_interface = case "vrrp.segment.interface must name the interface" (fx.withVrrp {
      segment = {
        addresses = {
          alpha = "10.40.0.1";
          beta = "10.40.0.2";
        };
      };
    });
    vrrp_segment_one_address = case "vrrp.segment.addresses must give exactly alpha's and beta's address" (fx.withVrrp {
      segment = {
        interface = "eno3";
        addresses = {alpha = "10.40.0.1";};
      };
    });
    vrrp_segment_same_address = case "vrrp.segment.addresses: alpha and beta both have 10.40.0.1" (fx.withVrrp {
      segment = {
        interface = "eno3";
        addresses = {
          alpha = "10.40.0.1";
          beta = "10.40.0.1";
        };
      };
    });
    vrrp_segment_two_subnets = case "vrrp.segment.addresses: 10.40.0.1 and 10.40.0.9 are not in one /30" (fx.withVrrp {
      segment = {
        interface = "eno3";
        addresses = {
          alpha = "10.40.0.1";
          beta = "10.40.0.9";
        };
      };
    });
    vrrp_segment_host_address = case "vrrp.segment.addresses must be addresses of their own" (fx.withVrrp {
      segment = {
        interface = "eno3";
        prefixLength = 24;
        addresses = {
          alpha = "10.20.0.11";
          beta = "10.20.0.50";
        };
      };
    });
    vrrp_segment_shared_interface = case "vrrp.segment.interface = \"eno2\" is also a host's zone or management interface" (fx.withVrrp {
      segment = {
        interface = "eno2";
        addresses = {
          alpha = "10.40.0.1";
          beta = "10.40.0.2";
        };
      };
    });
    vrrp_segment_unknown = case "unknown setting(s) vrrp.segment.device" (fx.withVrrp {segment = {device = "eno3";};});
    time_stratum = case "time.localStratum = 0 must be an integer in 1..15" (fx.with' {time = {localStratum = 0;};});
    time_servers = case "time.servers = \"ntp1\" must be a list" (fx.with' {time = {servers = "ntp1";};});
    time_unknown = case "unknown setting(s) time.pool" (fx.with' {time = {pool = ["x"];};});
    time_policy_unknown = case "time.policy = \"strict\" must be \"warn\"" (fx.with' {time = {policy = "strict";};});
    time_max_offset_zero = case "time.maxOffset = \"0s\" must be a positive duration" (fx.with' {time = {maxOffset = "0s";};});
    time_max_offset_unit = case "time.maxOffset = \"1 second\" must be a positive duration" (fx.with' {time = {maxOffset = "1 second";};});
    disks_system_one = case "hosts.alpha.disks.system = [\"/dev/sda\"] must be two device paths" (withHostDisks "alpha" {
      system = ["/dev/sda"];
      jetstream = "/dev/nvme0n1";
      artifacts = ["/dev/sdc" "/dev/sdd"];
    });
    disks_not_a_device = case "hosts.alpha.disks.jetstream = \"nvme0n1\" must be one device path" (withHostDisks "alpha" {
      system = ["/dev/sda" "/dev/sdb"];
      jetstream = "nvme0n1";
      artifacts = ["/dev/sdc" "/dev/sdd"];
    });
    disks_artifacts_missing = case "hosts.beta.disks.artifacts = null must be two device paths on a beta host" (withHostDisks "beta" {
      system = ["/dev/sda" "/dev/sdb"];
      jetstream = "/dev/nvme0n1";
    });
    disks_artifacts_on_gamma = case "hosts.gamma.disks.artifacts is set on a gamma host" (withHostDisks "gamma" {
      system = ["/dev/sda" "/dev/sdb"];
      jetstream = "/dev/nvme0n1";
      artifacts = ["/dev/sdc" "/dev/sdd"];
    });
    disks_twice = case "hosts.alpha.disks: /dev/sdb is given twice" (withHostDisks "alpha" {
      system = ["/dev/sda" "/dev/sdb"];
      jetstream = "/dev/nvme0n1";
      artifacts = ["/dev/sdb" "/dev/sdd"];
    });
    disks_unknown = case "unknown setting(s) hosts.alpha.disks.swap" (withHostDisks "alpha" {
      system = ["/dev/sda" "/dev/sdb"];
      jetstream = "/dev/nvme0n1";
      artifacts = ["/dev/sdc" "/dev/sdd"];
      swap = "/dev/sde";
    });
    time_servers_renamed = case "timeServers is now time.servers" (fx.with' {timeServers = ["10.30.0.1"];});
    cert_as_nix_path = case "certificates.privateKey is a Nix path" (fx.with' {
      certificates = fx.base.certificates // {privateKey = ./fixtures.nix;};
    });
    cert_relative = case "certificates.ca = \"ca.pem\" must be an absolute path string" (fx.with' {
      certificates = fx.base.certificates // {ca = "ca.pem";};
    });
    cert_policy_unknown = case "certificatePolicy.policy = \"ignore\"" (fx.with' {certificatePolicy = {policy = "ignore";};});
    unknown_setting = case "unknown setting(s) vipAddress" (fx.with' {vipAddress = "10.20.0.100";});
    ssh_allow_from_empty = case "ssh.allowFrom must list the networks that may reach SSH" (fx.with' {ssh.allowFrom = [];});
    ssh_allow_from_not_cidr = case "ssh.allowFrom: \"10.30.0.1\" is not a CIDR" (fx.with' {ssh.allowFrom = ["10.30.0.0/24" "10.30.0.1"];});
    ssh_unknown_setting = case "ssh: unknown setting(s) port; known: allowFrom" (fx.with' {ssh.port = 22;});
    management_network_bad = case "managementNetwork = \"10.20.0.0\" must be a CIDR" (fx.with' {managementNetwork = "10.20.0.0";});
  };
}
