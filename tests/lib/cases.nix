# Positive tests of modules/lib: each case is { name = <bool expression>; }.
# Evaluate with:  nix-instantiate --eval --strict --json tests/lib/cases.nix
# The runner (tests/lib/run.sh) prints one line per case and fails on any
# `false`. Failure cases (invalid zones and their messages) are in
# failures.nix.
let
  lib = import ../../modules/lib/zone.nix;
  net = import ../../modules/lib/net.nix;
  duration = import ../../modules/lib/duration.nix;
  fx = import ./fixtures.nix;

  zone = lib.normalise fx.base;
  nixos = lib.allHosts {
    inherit zone;
    pathsFor = _: lib.nixosPaths;
  };
  op = import ../../modules/lib/operator.nix {zone = fx.base;};
  opSim = import ../../modules/lib/operator.nix {
    zone = import ../../hosts/zone.nix;
    runDir = "/run/sim";
    commissioning = {
      class = "commissioning";
      consumer = "commissioning";
    };
  };
  sim = import ../../modules/lib/simulator.nix {
    zoneFile = ../../hosts/zone.nix;
    runDir = "/run/sim";
  };
  critical = lib.allHosts {
    zone = lib.normalise (fx.with' {tier = "critical";});
    pathsFor = _: lib.nixosPaths;
  };
  simHash = "$2b$04$" + builtins.substring 0 53 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnop";
  simSys = import ../../modules/lib/simulator.nix {
    zoneFile = ../../hosts/zone.nix;
    runDir = "/run/sim";
    natsSystemUser = {
      passwordFile = "/run/sim/nats-system-password";
      passwordHash = simHash;
    };
  };
  simUncapped = import ../../modules/lib/simulator.nix {
    zoneFile = ../../hosts/zone.nix;
    runDir = "/run/sim";
    storageCap = null;
  };
  sim1s = import ../../modules/lib/simulator.nix {
    zoneFile = ../../crates/bsfg-zonesim/zones/adverts-1s.nix;
    runDir = "/run/sim";
  };
  leaseFor = over: (lib.normalise (fx.with' over)).lease;
  # VRRPv2 without an explicit interval: the 1 s default applies.
  v2 = lib.normalise (fx.with' {vrrp = builtins.removeAttrs fx.base.vrrp ["advertIntervalMs"] // {version = 2;};});

  sortedNames = attrs: builtins.attrNames attrs;

  # The exact key sets of the Rust configuration schemas. A key the Rust side
  # does not know would be refused at start-up (deny_unknown_fields).
  controllerKeys = ["buckets" "classes" "consumers" "lease" "limits" "listen" "logging" "management" "nats" "node" "peers" "store" "tls" "zone"];
  agentKeys = ["artifacts" "certificate" "controller" "evaluate_interval" "host" "keepalived" "lease" "logging" "management" "nats" "time_sync" "vip" "zone"];

  # Alpha of a zone without nats.systemUser (no NATS accounts, no password).
  alphaWithoutSystemUser = lib.hostSettings {
    zone = lib.normalise (fx.with' {nats = fx.base.nats // {systemUser = null;};});
    host = "alpha";
    paths = lib.nixosPaths;
  };

  a = nixos.alpha;
  b = nixos.beta;
  g = nixos.gamma;
  plan = op.pki;
  planSim = sim.pki;
  planCert = p: name: builtins.head (builtins.filter (c: c.name == name) p.certificates);
  segmentZone = lib.normalise (fx.withVrrp {
    segment = {
      interface = "eno3";
      addresses = {
        alpha = "10.40.0.1";
        beta = "10.40.0.2";
      };
    };
  });
  segmentHosts = lib.allHosts {
    zone = segmentZone;
    pathsFor = _: lib.nixosPaths;
  };
  viaManagement = lib.allHosts {
    zone = lib.normalise (fx.with' {
      network = {
        defaultGateway = "10.30.0.1";
        routes = [
          {
            destination = "10.50.0.0/16";
            via = "10.20.0.250";
          }
        ];
      };
      time = {
        servers = ["ntp1.site.example"];
        localStratum = 8;
        policy = "deny";
        maxOffset = "250ms";
      };
    });
    pathsFor = _: lib.nixosPaths;
  };
  disksFor = prefix: artifacts:
    {
      system = ["/dev/disk/by-id/${prefix}sys0" "/dev/disk/by-id/${prefix}sys1"];
      jetstream = "/dev/disk/by-id/nvme-${
        if prefix == "ata-"
        then "js"
        else prefix + "js"
      }";
    }
    // (
      if artifacts
      then {artifacts = ["/dev/disk/by-id/${prefix}art0" "/dev/disk/by-id/${prefix}art1"];}
      else {}
    );
  withDisks = lib.allHosts {
    zone = lib.normalise (fx.base
      // {
        hosts = builtins.mapAttrs (name: h:
          h
          // {
            disks =
              if name == "alpha"
              then disksFor "ata-" true
              else disksFor "${name}-" (h.role != "gamma");
          })
        fx.base.hosts;
      });
    pathsFor = _: lib.nixosPaths;
  };
  bare = lib.allHosts {
    zone = lib.normalise (builtins.removeAttrs fx.base ["network" "time"]);
    pathsFor = _: lib.nixosPaths;
  };
  hasLine = line: text: builtins.elem line (builtins.filter builtins.isString (builtins.split "\n" text));
in {
  # --- site network and time (modules/lib/network.nix)
  network_gateway_dns_and_peer_route = let
    n = nixos.beta.network;
  in
    n.defaultGateway
    == {
      address = "10.20.0.1";
      interface = "eno1";
    }
    && n.nameservers == ["10.30.0.53"]
    && n.interfaces.eno1.routes
    == [
      {
        address = "10.10.0.0";
        prefixLength = 24;
        via = "10.20.0.254";
      }
    ]
    && n.interfaces.eno1.addresses
    == [
      {
        address = "10.20.0.12";
        prefixLength = 24;
      }
    ]
    && n.interfaces.eno2
    == {
      addresses = [
        {
          address = "10.30.0.12";
          prefixLength = 24;
        }
      ];
      routes = [];
    };
  network_next_hop_on_the_management_network_uses_its_interface =
    viaManagement.gamma.network.defaultGateway.interface
    == "eno2"
    && viaManagement.gamma.network.interfaces.eno1.routes
    == [
      {
        address = "10.50.0.0";
        prefixLength = 16;
        via = "10.20.0.250";
      }
    ];
  network_none_declared_configures_only_addresses =
    bare.alpha.network.defaultGateway
    == null
    && bare.alpha.network.nameservers == []
    && bare.alpha.network.interfaces.eno1.routes == []
    && bare.alpha.chrony.servers == [];
  vrrp_segment_carries_vrrp_and_the_vip_stays_on_the_service_interface = let
    k = segmentHosts.alpha.keepalived;
  in
    k.interface
    == "eno3"
    && k.unicastSrcIp == "10.40.0.1"
    && k.unicastPeers == ["10.40.0.2"]
    && k.vip.interface == "eno1"
    && segmentHosts.beta.keepalived.unicastPeers == ["10.40.0.1"]
    && segmentHosts.alpha.network.interfaces.eno3.addresses
    == [
      {
        address = "10.40.0.1";
        prefixLength = 30;
      }
    ]
    && !(segmentHosts.gamma.network.interfaces ? eno3)
    && hasLine "iifname \"eno3\" ip saddr { 10.40.0.2 } ip protocol 112 accept" segmentHosts.alpha.firewall.extraInputRules
    && builtins.match ".*unicast_src_ip 10[.]40[.]0[.]1.*10[.]40[.]0[.]2.*" (builtins.replaceStrings ["\n"] [" "] segmentHosts.alpha.keepalived.configText) != null;
  chrony_peers_the_other_hosts_in_orphan_mode = let
    c = nixos.alpha.chrony;
  in
    c.servers
    == ["10.30.0.1"]
    && c.peers == ["10.20.0.12" "10.20.0.13"]
    && hasLine "peer 10.20.0.12 iburst minpoll 4 maxpoll 6" c.extraConfig
    && hasLine "peer 10.20.0.13 iburst minpoll 4 maxpoll 6" c.extraConfig
    && hasLine "allow 10.20.0.13" c.extraConfig
    && hasLine "local stratum 10 orphan" c.extraConfig
    && hasLine "local stratum 8 orphan" viaManagement.beta.chrony.extraConfig
    && viaManagement.beta.chrony.servers == ["ntp1.site.example"]
    && hasLine "ip saddr { 10.20.0.11, 10.20.0.12 } udp dport 123 accept" nixos.gamma.firewall.extraInputRules;

  # The agent reports time sync by default and refuses promotion on a
  # service host whose clock is not synchronised only when asked to.
  agent_time_sync_defaults_to_warn = let
    t = nixos.alpha.gateAgent.config.time_sync;
  in
    t.policy == "warn" && t.max_offset == "1s" && t.chronyc == "chronyc";
  agent_time_sync_follows_the_zone = let
    t = viaManagement.beta.gateAgent.config.time_sync;
  in
    t.policy == "deny" && t.max_offset == "250ms" && viaManagement.gamma.gateAgent == null;

  # --- disk layouts (modules/lib/disks.nix)
  disks_service_host_layout = let
    d = withDisks.alpha.disko;
  in
    d.disk.system0.device
    == "/dev/disk/by-id/ata-sys0"
    && d.disk.system1.content.partitions.ESP.type == "EF00"
    && d.disk.system1.content.partitions.ESP.content
    == {
      type = "mdraid";
      name = "boot";
    }
    && d.mdadm.boot.metadata == "1.0"
    && d.mdadm.boot.content.mountpoint == "/boot"
    && d.mdadm.system.level == 1
    && d.mdadm.system.content.mountpoint == "/"
    && d.disk.jetstream.device == "/dev/disk/by-id/nvme-js"
    && d.disk.jetstream.content.partitions.jetstream.content.mountpoint == "/data/jetstream"
    && d.disk.artifacts0.content.partitions.artifacts.content
    == {
      type = "mdraid";
      name = "artifacts";
    }
    && d.mdadm.artifacts.content.mountpoint == "/artifacts"
    # The labels the hosts mount by (hosts/placeholder-hardware.nix, services.bsfg.storage).
    && d.mdadm.system.content.extraArgs == ["-L" "nixos"]
    && d.mdadm.boot.content.extraArgs == ["-n" "ESP"]
    && d.disk.jetstream.content.partitions.jetstream.content.extraArgs == ["-L" "jetstream"]
    && d.mdadm.artifacts.content.extraArgs == ["-L" "artifacts"]
    && withDisks.alpha.installDisks == ["/dev/disk/by-id/ata-sys0" "/dev/disk/by-id/ata-sys1" "/dev/disk/by-id/nvme-js" "/dev/disk/by-id/ata-art0" "/dev/disk/by-id/ata-art1"];
  disks_gamma_has_no_artifacts = let
    d = withDisks.gamma.disko;
  in
    !(d.disk ? artifacts0) && !(d.mdadm ? artifacts) && d.mdadm ? system && builtins.length withDisks.gamma.installDisks == 3;
  disks_default_none = nixos.alpha.disko == null && nixos.alpha.installDisks == [];
  # --- the installer's manifest (modules/lib/install.nix)
  install_manifest_disks_and_layout = let
    m = (import ../../modules/lib/install.nix).manifest {
      zone = fx.base;
      settings = withDisks.alpha;
    };
  in
    m.host
    == "alpha"
    && m.mountPoint == "/mnt"
    && map (d: d.device) m.disks == withDisks.alpha.installDisks
    && map (d: d.group) m.disks == ["system" "system" "jetstream" "artifacts" "artifacts"]
    && builtins.all (d: d.minBytes >= 8 * 1024 * 1024 * 1024) m.disks
    # the devices disko's script touches: exactly the declared ones
    && builtins.sort builtins.lessThan m.layout == builtins.sort builtins.lessThan withDisks.alpha.installDisks;
  install_manifest_gamma_has_three_disks = let
    m = (import ../../modules/lib/install.nix).manifest {
      zone = fx.base;
      settings = withDisks.gamma;
    };
  in
    map (d: d.group) m.disks == ["system" "system" "jetstream"] && builtins.length m.layout == 3;
  install_manifest_without_disks = let
    m = (import ../../modules/lib/install.nix).manifest {
      zone = fx.base;
      settings = nixos.alpha;
    };
  in
    m.disks == [] && m.layout == [];
  # gamma's service probe: its key is a certificate key (0600, from
  # `bsfgctl pki issue`), its certificate public.
  install_manifest_gamma_places_the_probe_certificate = let
    m = (import ../../modules/lib/install.nix).manifest {
      zone = fx.base;
      settings = nixos.gamma;
    };
    f = path: builtins.head (builtins.filter (x: x.path == path) m.files);
  in
    (f "/var/lib/bsfg/tls/probe.key")
    == {
      path = "/var/lib/bsfg/tls/probe.key";
      secret = true;
      option = "probe.privateKey";
      mode = "0600";
      createdBy = "bsfgctl pki issue";
    }
    && !(f "/var/lib/bsfg/tls/probe.pem").secret;
  # Every credential file of the host's units, each once; the secrets named
  # by their setting, with the mode and the command that creates them.
  install_manifest_files_are_the_units_credentials = let
    m = (import ../../modules/lib/install.nix).manifest {
      zone = fx.base;
      settings = nixos.alpha;
    };
    byPath = builtins.listToAttrs (map (f: {
        name = f.path;
        value = f;
      })
      m.files);
    credentials = builtins.concatMap (u: map (c: builtins.elemAt (builtins.match "[^:]+:(.*)" c) 0) (u.serviceConfig.LoadCredential or [])) (builtins.filter builtins.isAttrs (builtins.attrValues nixos.alpha.units));
    key = byPath.${zone.certificates.privateKey};
    pw = byPath.${zone.nats.users.controller.passwordFile};
  in
    builtins.length m.files
    == builtins.length (builtins.attrNames byPath)
    && builtins.all (c: byPath ? ${c}) credentials
    && key.secret
    && key.option == "certificates.privateKey"
    && key.mode == "0600"
    && pw.option == "nats.users.controller.passwordFile"
    && pw.mode == "0400"
    && builtins.match "head -c 32 /dev/urandom [|] base64 > .*" pw.createdBy != null
    && !byPath.${zone.certificates.ca}.secret;

  # --- certificate plan (modules/lib/pki.nix)
  pki_controller_names_the_vip_and_both_service_hosts = let
    c = planCert plan "controller";
  in
    c.ipAddresses
    == ["10.20.0.100" "10.20.0.11" "10.20.0.12"]
    && c.commonName == "plant-a-bsfg"
    && c.usage == "serverAndClient"
    && map (i: i.host) c.installs == ["alpha" "beta"]
    && (builtins.head c.installs).privateKey == zone.certificates.privateKey;
  pki_route_certificate_per_host = let
    g = planCert plan "nats-route-gamma";
  in
    g.ipAddresses
    == ["10.20.0.13"]
    && g.dnsNames == ["nats-route.plant-a"]
    && (builtins.head g.installs).certificate == zone.certificates.natsRouteCertificate
    && builtins.length plan.ca.installs == 3;
  pki_one_client_per_acl_identity =
    builtins.filter (n: builtins.substring 0 7 n == "client-") (map (c: c.name) plan.certificates)
    == map (i: "client-${i}") (builtins.sort builtins.lessThan (builtins.attrNames (builtins.listToAttrs (map (n: {
      name = n;
      value = null;
    }) (builtins.concatMap (c: c.append) (builtins.attrValues zone.classes) ++ builtins.concatMap (c: c.allowed) (builtins.attrValues zone.consumers) ++ builtins.concatMap (b: b.read ++ b.write) (builtins.attrValues zone.buckets))))));
  pki_simulator_plan_uses_the_simulator_paths =
    (builtins.head (planCert planSim "controller").installs).certificate
    == "/run/sim/alpha/credentials/cert.pem"
    && (builtins.head (planCert planSim "nats-route-beta").installs).privateKey == "/run/sim/beta/credentials/nats-route-key.pem";
  pki_controller_identity_is_configurable =
    (planCert
      (import ../../modules/lib/operator.nix {
        zone = fx.with' {certificates = fx.base.certificates // {controllerIdentity = "site-7";};};
      })
      .pki "controller")
    .commonName
    == "site-7";

  # --- net helpers
  net_ipv4_parses = net.isIPv4 "10.20.0.11" && !(net.isIPv4 "10.20.0.256") && !(net.isIPv4 "10.020.0.1") && !(net.isIPv4 "10.20.0");
  net_same_subnet = net.sameSubnet "10.20.0.1" "10.20.0.254" 24 && !(net.sameSubnet "10.20.0.1" "10.20.1.1" 24) && net.sameSubnet "10.20.0.1" "10.20.1.1" 16;
  net_cidr = net.inCidr "10.20.0.9" "10.20.0.0/24" && !(net.inCidr "10.21.0.9" "10.20.0.0/24") && net.parseCidr "10.0.0.0/33" == null;
  net_broadcast = net.isNetworkOrBroadcast "10.20.0.255" 24 && net.isNetworkOrBroadcast "10.20.0.0" 24 && !(net.isNetworkOrBroadcast "10.20.0.1" 24);

  # --- durations
  duration_parse = duration.parse "250ms" == 250 && duration.parse "30d" == 2592000000 && duration.parse "1.5s" == null;
  advert_interval_strings = map duration.msToSecondsString [200 1000 1500 50 250 10] == ["0.2" "1" "1.5" "0.05" "0.25" "0.01"];

  # --- roles decide what runs where (seed "Service Distribution")
  gamma_runs_nats_and_the_probe =
    g.runs
    == {
      nats = true;
      keepalived = false;
      gateAgent = false;
      controller = false;
      artifacts = false;
      probe = true;
    };
  gamma_has_no_service_settings = g.keepalived == null && g.controller == null && g.gateAgent == null;
  service_hosts_run_everything_but_the_probe = builtins.all (h: builtins.all (x: x) (builtins.attrValues (builtins.removeAttrs h.runs ["probe"])) && !h.runs.probe && h.probe == null) [a b];

  # --- the service probe on gamma (modules/lib/probe.nix)
  probe_dials_the_vip_with_its_credentials = let
    m = g.probe.config.modules;
  in
    g.probe.targets.grpc
    == "10.20.0.100:9443"
    && m.bsfg_grpc_health.grpc.tls_config.key_file == lib.nixosPaths.probe.privateKey
    && m.bsfg_grpc_health.grpc.service == "bsfg.v1.BoundaryService"
    && m.bsfg_connect_health.http.method == "POST"
    && m.bsfg_connect_health.prober == "http"
    && g.probe.listen
    == {
      address = "10.30.0.13";
      port = 9115;
    }
    && builtins.fromJSON g.probe.configText == g.probe.config;
  probe_port_only_on_gammas_management_address =
    builtins.match ".*ip daddr 10.30.0.13 tcp dport [{] 8222, 9115 [}] accept.*" g.firewall.extraInputRules
    != null
    && builtins.match ".*9115.*" a.firewall.extraInputRules == null;
  probe_certificate_is_a_client_on_gamma_only = let
    c = planCert plan "probe";
  in
    c.commonName
    == "plant-a-probe"
    && c.usage == "client"
    && map (i: i.host) c.installs == ["gamma"]
    && (builtins.head c.installs).privateKey == "/var/lib/bsfg/tls/probe.key";
  probe_scrape_job_labels_each_check = let
    j = (import ../../modules/lib/probe.nix).scrapeConfig zone;
  in
    j.job_name
    == "bsfg-service-probe"
    && map (t: t.labels.probe) j.static_configs == ["grpc" "connect"]
    && map (t: t.labels.__param_module) j.static_configs == ["bsfg_grpc_health" "bsfg_connect_health"]
    && (builtins.head j.static_configs).targets == ["10.30.0.13:9115"];
  probe_key_is_a_secret_path = builtins.elem "probe.privateKey" (map (p: p.option) (lib.secretPaths fx.base));
  simulator_probe_uses_the_simulator_paths = sim.hosts.gamma.probe.config.modules.bsfg_grpc_health.grpc.tls_config.cert_file == "/run/sim/gamma/credentials/probe-cert.pem";

  # --- VRRP: asymmetric priorities, unicast to the other service host only
  priorities_asymmetric = a.keepalived.priority == 150 && b.keepalived.priority == 100;
  unicast_peers_are_the_other_service_host = a.keepalived.unicastPeers == ["10.20.0.12"] && b.keepalived.unicastPeers == ["10.20.0.11"];
  both_start_backup_nopreempt = builtins.all (h: h.keepalived.state == "BACKUP" && h.keepalived.noPreempt) [a b];
  vrrpv3_fast_adverts = a.keepalived.version == 3 && a.keepalived.advertInterval == "0.2";
  vrrpv2_defaults_to_one_second = v2.vrrp.advertIntervalMs == 1000;
  weight_zero_check_and_track_file = a.keepalived.checkScript.weight == 0 && a.keepalived.trackFile.weight == 0;
  check_script_runs_agent_check = builtins.elemAt a.keepalived.checkScript.argv 1 == "check" && builtins.elemAt a.keepalived.checkScript.argv 3 == "/etc/bsfg/gate-agent.toml";
  vip_on_host_interface =
    a.keepalived.vip
    == {
      address = "10.20.0.100";
      prefixLength = 24;
      interface = "eno1";
    };
  keepalived_text_mentions_everything = let
    t = a.keepalived.configText;
    has = s: builtins.match ".*${s}.*" (builtins.replaceStrings ["\n"] [" "] t) != null;
  in
    builtins.all has ["vrrp_version 3" "notify_fifo /run/bsfg-gate-agent/notify.fifo" "nopreempt" "virtual_router_id 51" "advert_int 0.2" "bsfg_gate weight 0" "unicast_src_ip 10.20.0.11" "enable_script_security"];

  # --- NATS: client on localhost, cluster on host IPs, full mesh
  nats_client_localhost = builtins.all (h: h.nats.settings.host == "127.0.0.1" && h.nats.settings.port == 4222) [a b g];
  nats_cluster_on_host_ip = a.nats.settings.cluster.listen == "10.20.0.11:6222" && g.nats.settings.cluster.listen == "10.20.0.13:6222";
  nats_routes_other_two = a.nats.settings.cluster.routes == ["nats-route://10.20.0.12:6222" "nats-route://10.20.0.13:6222"] && builtins.length g.nats.settings.cluster.routes == 2;
  nats_monitoring_on_management_address = a.nats.settings.http == "10.30.0.11:8222";
  standard_tier_keeps_default_sync = !(a.nats.settings.jetstream ? sync_interval);
  critical_tier_syncs_always = builtins.all (h: h.nats.settings.jetstream.sync_interval == "always") (builtins.attrValues critical);
  jetstream_store_dir_nixos = a.nats.settings.jetstream.store_dir == "/data/jetstream";

  # --- controller: binds the VIP, exact schema, real paths on NixOS
  controller_binds_vip = a.controller.config.listen == {address = "10.20.0.100:9443";};
  controller_keys_match_schema = sortedNames a.controller.config == controllerKeys;
  controller_tls_via_credentials = a.controller.config.tls.private_key == "/run/credentials/bsfg-controller.service/key.pem";
  controller_artifacts_dir = a.controller.config.store.artifact_dir == "/artifacts";
  controller_gathers_leaders_on_the_witness = a.controller.config.store.leaders_on == "gamma";
  controller_node_is_host = a.controller.config.node == "alpha" && b.controller.config.node == "beta";
  lease_rendered =
    a.controller.config.lease
    == {
      enabled = true;
      bucket = "bsfg_lease";
      ttl = "500ms";
      renew_interval = "100ms";
      safety_margin = "125ms";
      sighting_file = "/run/bsfg-gate-agent/lease-sighting";
    };

  # --- lease defaults follow the adverts (the TTL must expire before the VIP
  # has moved); margin / (2 * ttl) stays 12.5 %
  lease_subsecond_adverts_default_to_500ms =
    zone.lease
    == {
      bucket = "bsfg_lease";
      ttl = "500ms";
      renewInterval = "100ms";
      safetyMargin = "125ms";
    };
  lease_one_second_adverts_keep_1s =
    builtins.removeAttrs v2.lease ["bucket"]
    == {
      ttl = "1s";
      renewInterval = "200ms";
      safetyMargin = "250ms";
    };
  lease_990ms_v3_adverts_are_subsecond = (leaseFor {vrrp = fx.base.vrrp // {advertIntervalMs = 990;};}).ttl == "500ms";
  lease_1s_v3_adverts_keep_1s = (leaseFor {vrrp = fx.base.vrrp // {advertIntervalMs = 1000;};}).ttl == "1s";
  lease_given_ttl_scales_renewal_and_margin =
    leaseFor {lease = {ttl = "2s";};}
    == {
      bucket = "bsfg_lease";
      ttl = "2s";
      renewInterval = "400ms";
      safetyMargin = "500ms";
    };
  lease_given_settings_win =
    leaseFor {
      lease = {
        bucket = "other_lease";
        ttl = "1s";
        renewInterval = "200ms";
        safetyMargin = "250ms";
      };
    }
    == {
      bucket = "other_lease";
      ttl = "1s";
      renewInterval = "200ms";
      safetyMargin = "250ms";
    };
  lease_reaches_the_agent = a.gateAgent.config.lease.ttl == "500ms" && sim1s.lease.ttl == "1s" && sim1s.hosts.beta.gateAgent.config.lease.ttl == "1s";

  # The agent writes the sighting where the controller reads it.
  lease_sighting_shared = a.gateAgent.config.lease.sighting_file == a.controller.config.lease.sighting_file;

  # --- NATS accounts (nats.systemUser): $SYS with the controller's system
  # user (bcrypt hash only), $G with the password-less no_auth_user
  nats_system_account_with_hash_only = builtins.all (h:
    h.nats.settings.accounts
    == {
      "$SYS".users = [
        {
          user = "bsfg-system";
          password = fx.base.nats.systemUser.passwordHash;
        }
      ];
    }
    && h.nats.settings.system_account == "$SYS") [a b g];
  # No anonymous login; one user per daemon, each with its permissions.
  nats_no_anonymous_user = builtins.all (h: !(h.nats.settings ? no_auth_user) && map (u: u.user) h.nats.settings.authorization.users == ["bsfg-controller" "bsfg-gate-agent" "bsfg-backup"]) [a b g];
  nats_controller_confined_to_its_streams = let
    p = (builtins.head a.nats.settings.authorization.users).permissions;
  in
    builtins.elem "$JS.API.STREAM.*.facts_operational" p.publish.allow
    && builtins.elem "$KV.bsfg_lease.>" p.publish.allow
    && !(builtins.elem "$JS.API.>" p.publish.allow)
    && !(builtins.elem ">" p.publish.allow)
    && p.subscribe.allow == ["_INBOX.>"];
  nats_agent_reads_the_lease_only = let
    p = (builtins.elemAt a.nats.settings.authorization.users 1).permissions;
  in
    builtins.all (s: builtins.match ".*KV_bsfg_lease.*" s != null) p.publish.allow;
  nats_routes_need_zone_certificates =
    a.nats.settings.cluster.tls.verify_and_map
    && a.nats.settings.cluster.authorization.user == "nats-route.plant-a"
    && a.nats.settings.cluster.tls.ca_file == "/run/credentials/nats.service/ca.pem";
  daemons_read_their_nats_passwords_by_path =
    a.controller.config.nats.password_file
    == "/run/credentials/bsfg-controller.service/nats-password"
    && a.gateAgent.config.nats.password_file == "/run/credentials/bsfg-gate-agent.service/nats-password";
  nats_password_never_rendered = builtins.match ".*passwordFile.*|.*secrets.*" (builtins.toJSON a.nats.settings) == null;
  controller_system_user_via_credentials =
    a.controller.config.nats
    == {
      url = "nats://127.0.0.1:4222";
      user = "bsfg-controller";
      password_file = "/run/credentials/bsfg-controller.service/nats-password";
      system_user = "bsfg-system";
      system_user_password_file = "/run/credentials/bsfg-controller.service/nats-system-password";
    };
  without_system_user_no_accounts = let
    h = alphaWithoutSystemUser;
  in
    !(h.nats.settings ? accounts) && !(h.nats.settings ? no_auth_user) && !(h.controller.config.nats ? system_user);
  simulator_system_user_replaces_the_zones =
    simSys.hosts.alpha.controller.config.nats.system_user_password_file
    == "/run/sim/alpha/credentials/nats-system-password"
    && (builtins.head simSys.hosts.gamma.nats.settings.accounts."$SYS".users).password == simHash;

  # --- gate agent
  agent_keys_match_draft = sortedNames a.gateAgent.config == agentKeys;
  agent_systemd_on_nixos = a.gateAgent.config.controller.supervisor == "systemd" && a.gateAgent.config.controller.unit == "bsfg-controller.service";
  agent_artifacts_mount_required_on_nixos = a.gateAgent.config.artifacts.require_mount_point;
  # The agent reads the public certificate where it is installed and only
  # looks whether the controller's other credentials exist: no file may be
  # missing for the agent itself to start.
  agent_reads_the_installed_certificate = a.gateAgent.config.certificate.path == "/var/lib/bsfg/tls/controller.pem";
  agent_knows_every_controller_credential =
    a.gateAgent.config.controller.credentials
    == {
      tls_certificate = "/var/lib/bsfg/tls/controller.pem";
      tls_private_key = "/var/lib/bsfg/tls/controller.key";
      tls_ca = "/var/lib/bsfg/tls/ca.pem";
      nats_system_password = "/var/lib/bsfg/secrets/nats-system-password";
    };
  agent_credentials_without_system_user =
    builtins.attrNames alphaWithoutSystemUser.gateAgent.config.controller.credentials == ["tls_ca" "tls_certificate" "tls_private_key"];
  simulator_agent_credentials_are_the_files_the_controller_reads =
    sim.hosts.alpha.gateAgent.config.controller.credentials.tls_private_key
    == sim.hosts.alpha.controller.config.tls.private_key
    && sim.hosts.alpha.gateAgent.config.certificate.path == sim.hosts.alpha.controller.config.tls.certificate;
  # The agent unit restarts forever with backoff and loads no credential
  # (the simulator follows the same serviceConfig when it restarts an agent).
  agent_unit_restarts_with_backoff_and_no_start_limit = let
    u = a.units.bsfg-gate-agent;
  in
    u.serviceConfig.Restart
    == "always"
    && u.serviceConfig.RestartSec == "1s"
    && u.serviceConfig.RestartSteps == 3
    && u.serviceConfig.RestartMaxDelaySec == "8s"
    && u.unitConfig.StartLimitIntervalSec == 0
    && u.serviceConfig.LoadCredential == ["nats-password:/var/lib/bsfg/secrets/nats-gate-agent-password"]
    && builtins.match ".*RestartSteps=3\nRestartMaxDelaySec=8s.*|.*RestartMaxDelaySec=8s\n.*RestartSteps=3.*" u.text != null
    && sim.hosts.beta.units.bsfg-gate-agent.serviceConfig.RestartSteps == 3;

  # --- simulator: same values, paths under runDir/<host>, process supervisor
  simulator_paths_under_run_dir = sim.hosts.beta.controller.config.store.artifact_dir == "/run/sim/beta/artifacts" && sim.hosts.gamma.nats.settings.jetstream.store_dir == "/run/sim/gamma/jetstream";
  simulator_process_supervisor = sim.hosts.alpha.gateAgent.config.controller.supervisor == "process" && sim.hosts.alpha.gateAgent.config.controller.command == ["bsfg-controller" "--config" "/run/sim/alpha/controller.toml"];
  simulator_same_vrrp_as_nixos = sim.hosts.alpha.keepalived.priority == a.keepalived.priority && sim.hosts.alpha.keepalived.virtualRouterId == a.keepalived.virtualRouterId && sim.hosts.alpha.keepalived.unicastPeers == a.keepalived.unicastPeers;
  simulator_same_classes_as_nixos = simUncapped.hosts.beta.controller.config.classes == b.controller.config.classes;
  # Three JetStream servers share the simulator's disk: streams are capped, nothing else changes.
  simulator_caps_stream_sizes =
    builtins.all (c: c.max_bytes == "256 MiB") (builtins.attrValues sim.hosts.beta.controller.config.classes)
    && sim.hosts.beta.controller.config.store.forward_max_bytes == "256 MiB"
    && builtins.mapAttrs (_: c: removeAttrs c ["max_bytes"]) sim.hosts.beta.controller.config.classes
    == builtins.mapAttrs (_: c: removeAttrs c ["max_bytes"]) b.controller.config.classes;
  simulator_json_serialisable = builtins.isString (builtins.toJSON sim);

  # --- identities keep their case here; the controller lower-cases them
  identities_passed_through = zone.classes.operational.append == ["mes-producer"];

  # --- operator view (bsfgctl's zone file): the same addresses, ports and peers
  operator_endpoint_is_the_vip = op.endpoint == "https://${zone.vip.address}:${toString zone.ports.controller}";
  operator_coordination_network_is_alphas_subnet = op.coordinationNetwork == "10.20.0.0/24";
  operator_agents_only_on_service_hosts = op.hosts.alpha.agent == "${a.managementAddress}:${toString zone.ports.agentManagement}" && op.hosts.gamma.agent == null && op.hosts.gamma.controllerManagement == null;
  operator_keepalived_peers_as_rendered = op.hosts.alpha.keepalived.unicastPeers == a.keepalived.unicastPeers && op.hosts.alpha.keepalived.unicastSrcIp == a.keepalived.unicastSrcIp && op.hosts.gamma.keepalived == null;
  operator_mounts_by_role = map (m: m.path) op.hosts.alpha.mounts == ["/data/jetstream" "/opt/bsfg" "/artifacts"] && map (m: m.path) op.hosts.gamma.mounts == ["/data/jetstream" "/opt/bsfg"] && op.hosts.gamma.absentMounts == ["/artifacts"] && builtins.all (m: m.mountPoint) op.hosts.beta.mounts;
  operator_simulator_paths_are_directories =
    opSim.hosts.beta.mounts
    == [
      {
        path = "/run/sim/beta/jetstream";
        purpose = "jetstream";
        mountPoint = false;
      }
      {
        path = "/run/sim/beta/opt";
        purpose = "opt";
        mountPoint = false;
      }
      {
        path = "/run/sim/beta/artifacts";
        purpose = "artifacts";
        mountPoint = false;
      }
    ];
  operator_commissioning_passed_through = opSim.commissioning.class == "commissioning" && op.commissioning == null;
  operator_json_serialisable = builtins.isString (builtins.toJSON opSim);

  # The nats-server version is one fact (modules/lib/versions.nix); the
  # Rust test kit's install hint names the same release.
  testkit_installs_the_pinned_nats_server = let
    v = (import ../../modules/lib/versions.nix).natsServer.version;
  in
    builtins.match ".*NATS_SERVER_VERSION: &str = \"${builtins.replaceStrings ["."] ["[.]"] v}\";.*" (builtins.replaceStrings ["\n"] [" "] (builtins.readFile ../../crates/bsfg-testkit/src/bins.rs)) != null;
  # The TOML renderer: what it writes parses back to the same data.
  toml_round_trips_every_daemon_configuration = let
    toml = (import ../../modules/lib/toml.nix).render;
    configs = builtins.concatLists (map (h: [h.controller.config h.gateAgent.config]) [nixos.alpha nixos.beta]);
  in
    builtins.all (c: builtins.fromTOML (toml c) == c) configs;
  toml_quotes_odd_keys_and_strings = let
    x = {
      "a.b" = "say \"hi\"\n";
      list = [1 2];
      t = {u = true;};
      users = [{user = "x";}];
    };
  in
    builtins.fromTOML ((import ../../modules/lib/toml.nix).render x) == x;
  rendered_texts_are_the_data = builtins.fromJSON nixos.gamma.nats.configText == nixos.gamma.nats.settings;

  # The systemd mode's containers run the appliance's units: the unit texts
  # the NixOS host gets (store paths), with only the store paths replaced.
  container_units_are_the_appliance_units_with_container_paths = let
    c = import ../../modules/lib/container.nix {
      zoneFile = ../../hosts/zone.nix;
      runDir = "/run/sim";
    };
    a = c.appliance.alpha;
    g = c.appliance.gamma;
    files = c.hosts.alpha.files;
    gf = c.hosts.gamma.files;
    own = u: files."/etc/systemd/system/${u.name}".text == c.containerise u.text;
  in
    own a.units.bsfg-controller
    && own a.units.bsfg-gate-agent
    && files."/etc/bsfg/controller.toml".text == c.containerise a.controller.configText
    && files."/etc/polkit-1/rules.d/10-bsfg.rules".text == a.polkitRule
    # gamma's scheduled snapshots: the appliance's two units, the timer enabled.
    && gf."/etc/systemd/system/bsfg-backup.service".text == c.containerise g.units.bsfg-backup.text
    && gf."/etc/systemd/system/bsfg-backup.timer".text == g.units.bsfg-backup-timer.text
    && c.hosts.gamma.links."/etc/systemd/system/timers.target.wants/bsfg-backup.timer" == "../bsfg-backup.timer"
    && builtins.elem "bsfg-backup.service" c.hosts.gamma.units
    # alpha's and beta's artifact snapshots likewise, with their user, the
    # program and their state directory; none on gamma.
    && builtins.all (h: let
      u = c.appliance.${h}.units;
      hf = c.hosts.${h}.files;
      bound = map (b: b.target) c.hosts.${h}.binds;
    in
      hf."/etc/systemd/system/bsfg-artifact-backup.service".text
      == c.containerise u.bsfg-artifact-backup.text
      && hf."/etc/systemd/system/bsfg-artifact-backup.timer".text == u.bsfg-artifact-backup-timer.text
      && c.hosts.${h}.links."/etc/systemd/system/timers.target.wants/bsfg-artifact-backup.timer" == "../bsfg-artifact-backup.timer"
      && builtins.elem "bsfg-artifact-backup.service" c.hosts.${h}.units
      && builtins.match ".*u bsfg-artifact-backup 986 .*" hf."/etc/sysusers.d/bsfg.conf".text != null
      && builtins.all (p: builtins.elem p bound) [c.containerBinaries.bsfgctl "/var/lib/bsfg-artifact-backup" "/artifacts"]) ["alpha" "beta"]
    && !(gf ? "/etc/systemd/system/bsfg-artifact-backup.service")
    && !(builtins.elem "bsfg-artifact-backup.service" c.hosts.gamma.units)
    # ...and no store path is left in the container.
    && builtins.all (f: builtins.match ".*/nix/store/.*" f.text == null) (builtins.attrValues files);
  # What a switch of a container restarts is the units data's
  # restartIfChanged (nixpkgs' default true where the appliance sets none),
  # and gamma's container runs the service probe as the appliance does:
  # nixpkgs' exporter unit with the appliance's additions, enabled.
  container_switch_and_probe_follow_the_units_data = let
    c = import ../../modules/lib/container.nix {
      zoneFile = ../../hosts/zone.nix;
      runDir = "/run/sim";
    };
    r = c.hosts.alpha.restartIfChanged;
    g = c.hosts.gamma;
    unit = g.files."/etc/systemd/system/prometheus-blackbox-exporter.service".text;
    contains = re: text: builtins.length (builtins.split re text) > 1;
  in
    !r."bsfg-controller.service"
    && r."bsfg-gate-agent.service"
    && r."nats.service"
    && r."keepalived.service"
    && !g.restartIfChanged."bsfg-backup.service"
    && builtins.elem "prometheus-blackbox-exporter.service" g.units
    && g.links."/etc/systemd/system/multi-user.target.wants/prometheus-blackbox-exporter.service" == "../prometheus-blackbox-exporter.service"
    && contains "\nSystemCallFilter=~@resources\nSystemCallFilter=setrlimit\n" unit
    && contains "\nExecStart=${c.containerBinaries.blackboxExporter} --web.listen-address [0-9.]+:9115 --config.file /etc/bsfg/probe-blackbox.json\n" unit
    && contains "\nLoadCredential=cert.pem:" unit
    && g.files."/etc/bsfg/probe-blackbox.json".text == c.appliance.gamma.probe.configText
    && builtins.any (b: b.target == c.containerBinaries.blackboxExporter && b.readOnly) g.binds
    && !(c.hosts.alpha.files ? "/etc/systemd/system/prometheus-blackbox-exporter.service");
  # Every container runs nixpkgs' node exporter unit on the appliance's
  # flags (node-exporter.nix `args`, one renderer), with the appliance's
  # paths (the textfile directories, not the run directory's), as the user
  # nixpkgs' module creates, enabled; no mount-point flag of the process mode.
  container_node_exporter_is_the_appliance_exporter = let
    c = import ../../modules/lib/container.nix {
      zoneFile = ../../hosts/zone.nix;
      runDir = "/run/sim";
    };
    contains = re: text: builtins.length (builtins.split re text) > 1;
    on = h: let
      x = c.hosts.${h};
      a = c.appliance.${h};
      unit = x.files."/etc/systemd/system/prometheus-node-exporter.service".text;
      e = (import ../../modules/lib/node-exporter.nix).host {
        settings = a;
        port = 9100;
      };
    in
      builtins.elem "prometheus-node-exporter.service" x.units
      && x.restartIfChanged."prometheus-node-exporter.service"
      && x.links."/etc/systemd/system/multi-user.target.wants/prometheus-node-exporter.service" == "../prometheus-node-exporter.service"
      && builtins.elem "ExecStart=${builtins.concatStringsSep " " ([c.containerBinaries.nodeExporter] ++ e.args)}" (builtins.filter builtins.isString (builtins.split "\n" unit))
      && contains "--web.listen-address ${a.managementAddress}:9100 " unit
      && !(contains "mount-points-exclude" unit)
      && !(contains "/run/sim" unit)
      && contains "\nUser=node-exporter\n" unit
      && contains "\nRestrictAddressFamilies=AF_UNIX\n" unit
      && contains "\nProtectSystem=strict\n" unit
      && contains "u node-exporter 987 " x.files."/etc/sysusers.d/bsfg.conf".text
      && builtins.any (b: b.target == c.containerBinaries.nodeExporter && b.readOnly) x.binds;
  in
    builtins.all on ["alpha" "beta" "gamma"]
    && contains "--collector.textfile.directory=/var/lib/bsfg-backup" c.hosts.gamma.files."/etc/systemd/system/prometheus-node-exporter.service".text
    && contains "--collector.textfile.directory=/var/lib/bsfg-artifact-backup" c.hosts.alpha.files."/etc/systemd/system/prometheus-node-exporter.service".text;
  containerise_replaces_exactly_the_store_binaries = let
    c = import ../../modules/lib/container.nix {
      zoneFile = ../../hosts/zone.nix;
      runDir = "/run/sim";
    };
  in
    c.containerise "ExecStart=${c.storeBinaries.gateAgent} run /nix/store/other"
    == "ExecStart=${c.containerBinaries.gateAgent} run /nix/store/other";
  # The controller unit is wanted by nothing in the container either.
  container_controller_is_not_enabled = let
    c = import ../../modules/lib/container.nix {
      zoneFile = ../../hosts/zone.nix;
      runDir = "/run/sim";
    };
  in
    builtins.all (l: builtins.match ".*bsfg-controller.*" l == null) (builtins.attrNames c.hosts.alpha.links);
  # Every LoadCredential= source of every unit in a container lies in a
  # directory bound into it (a missing bind fails the unit at start; a
  # directory, not the file, so a file replaced by a rename is seen
  # inside), from the staging tree the certificate plan is issued into,
  # and nats-server's unit loads the route certificate as the NixOS
  # host's does.
  container_credentials_are_bound = let
    h = "$2b$11$714o97zOAjVTRJgro5CNJe3fPm2BfHT/2CknfIE28PidLbm14fiRq";
    u = name: {
      passwordFile = "/run/sim/${name}-password";
      passwordHash = h;
    };
    c = import ../../modules/lib/container.nix {
      zoneFile = ../../hosts/zone.nix;
      runDir = "/run/sim";
      natsSystemUser = u "system";
      natsUsers = {
        controller = u "controller";
        gateAgent = u "gate-agent";
        backup = u "backup";
      };
    };
    sources = host:
      builtins.concatMap (
        f: let
          lines = builtins.filter builtins.isString (builtins.split "\n" f.text);
          m = map (builtins.match "LoadCredential=[^:]*:(.*)") lines;
        in
          map builtins.head (builtins.filter (x: x != null) m)
      ) (builtins.attrValues c.hosts.${host}.files);
    bound = host: map (b: b.target) c.hosts.${host}.binds;
    fromStaging = host:
      builtins.all (
        b: b.source == "${c.staging}/${host}${b.target}" && b.readOnly
      ) (builtins.filter (b: builtins.elem b.target (map dirOf (sources host))) c.hosts.${host}.binds);
    installed = builtins.all (cert: builtins.all (i: builtins.elem (dirOf i.certificate) (bound i.host)) cert.installs) c.pki.certificates;
    allBound = host: let
      s = sources host;
    in
      s
      != []
      && builtins.all (p: builtins.elem (dirOf p) (bound host) && !(builtins.elem p (bound host))) s
      && fromStaging host;
    natsUnit = host: c.hosts.${host}.files."/etc/systemd/system/nats.service".text;
    loads = host: cred: builtins.match ".*LoadCredential=${cred}:.*" (natsUnit host) != null;
  in
    builtins.all allBound ["alpha" "beta" "gamma"]
    && installed
    && c.hosts.alpha.passwordFiles.controller == "${c.staging}/alpha/var/lib/bsfg/secrets/nats-controller-password"
    && c.hosts.gamma.passwordFiles.controller == null
    && builtins.all (host: loads host "route-cert.pem" && loads host "route-key.pem") ["alpha" "beta" "gamma"]
    && builtins.length (sources "alpha") > builtins.length (sources "gamma");
  # Artifact snapshots (zone setting artifactBackup): on alpha and beta
  # only, each of its own /artifacts, from the one renderer (units.nix).
  artifact_backup_units_on_the_service_hosts_only = let
    hs = lib.allHosts {
      zone = lib.normalise (fx.with' {
        artifactBackup = {
          schedule = "*-*-* 03:00:00";
          keep = 3;
        };
      });
      pathsFor = _: lib.nixosPaths;
    };
    without = lib.allHosts {
      zone = lib.normalise (builtins.removeAttrs fx.base ["artifactBackup"]);
      pathsFor = _: lib.nixosPaths;
    };
    svc = hs.alpha.units.bsfg-artifact-backup;
    sc = svc.serviceConfig;
  in
    builtins.all (h: hs.${h}.units ? bsfg-artifact-backup && hs.${h}.units ? bsfg-artifact-backup-timer) ["alpha" "beta"]
    && !(hs.gamma.units ? bsfg-artifact-backup)
    # Absent: no unit anywhere.
    && builtins.all (h: !(without.${h}.units ? bsfg-artifact-backup)) ["alpha" "beta" "gamma"]
    && builtins.tail svc.argv == ["backup-artifacts" "--from" "/artifacts" "--into" "/var/lib/bsfg-artifact-backup/snapshots" "--keep" "3" "--metrics-file" "/var/lib/bsfg-artifact-backup/bsfg-artifact-backup.prom"]
    && hs.beta.units.bsfg-artifact-backup-timer.timerConfig.OnCalendar == "*-*-* 03:00:00"
    && hs.beta.units.bsfg-artifact-backup-timer.wantedBy == ["timers.target"]
    && svc.wantedBy == []
    && !svc.restartIfChanged
    # Least privilege: reads /artifacts through its group, writes only the
    # destination and its state directory, no network.
    && sc.ReadOnlyPaths == ["/artifacts"]
    && sc.ReadWritePaths == ["-/var/lib/bsfg-artifact-backup/snapshots"]
    && sc.SupplementaryGroups == ["bsfg-artifacts"]
    && sc.PrivateNetwork
    && sc.ProtectSystem == "strict"
    && sc.User == "bsfg-artifact-backup"
    && builtins.match ".*ExecStart=[^\n]*backup-artifacts --from /artifacts.*" svc.text != null
    && builtins.match ".*OnCalendar=\\*-\\*-\\* 03:00:00.*" hs.alpha.units.bsfg-artifact-backup-timer.text != null;
}
