# Smoke test of the NixOS modules WITHOUT nixpkgs (CI has no nixpkgs store).
#
# Each module under modules/ is called with a stub `lib` (just the handful of
# nixpkgs lib functions the modules use, with the same semantics for plain
# values), a stub `pkgs`, and a hand-built `config` whose services.bsfg part
# is computed by the real zone library. The returned `config` trees are
# forced completely, which catches what `nix-instantiate --parse` cannot:
# misspelt attributes of the computed settings, wrong argument shapes,
# assertions that do not evaluate. It does NOT check option names or types
# against nixpkgs; docs/nixpkgs-options-checked.md records that review, and
# `nix flake check` on a machine with nixpkgs does the real evaluation.
let
  zoneLib = import ../../modules/lib/zone.nix;
  fx = import ./fixtures.nix;

  # --- a minimal stand-in for nixpkgs' lib --------------------------------
  stubType = name: {_type = "stub-type";} // {inherit name;};
  lib = rec {
    mkIf = cond: value:
      if cond
      then value
      else {};
    mkMerge = builtins.foldl' merge {};
    mkDefault = x: x;
    mkForce = x: x;
    mkOption = attrs: {_type = "option";} // attrs;
    mkEnableOption = what: mkOption {description = "Whether to enable ${what}.";};
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    types = {
      attrs = stubType "attrs";
      bool = stubType "bool";
      str = stubType "str";
      port = stubType "port";
      package = stubType "package";
      path = stubType "path";
      nullOr = t: stubType "nullOr ${t.name}";
      listOf = t: stubType "listOf ${t.name}";
      enum = vs: stubType "enum ${builtins.toJSON vs}";
      submodule = _: stubType "submodule";
    };
    inherit (builtins) filter concatLists any;
    concatMap = f: xs: builtins.concatLists (map f xs);
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (builtins.attrNames attrs);
    # The separators the modules use; nixpkgs' splitString takes any literal.
    splitString = sep: s:
      if sep == " " || sep == "\n"
      then builtins.filter builtins.isString (builtins.split sep s)
      else throw "stub splitString: separator ${builtins.toJSON sep} not supported";
    hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
    concatStringsSep = builtins.concatStringsSep;
    concatMapStringsSep = sep: f: xs: builtins.concatStringsSep sep (map f xs);
    optional = c: x:
      if c
      then [x]
      else [];
    optionals = c: xs:
      if c
      then xs
      else [];
    optionalString = c: s:
      if c
      then s
      else "";
    optionalAttrs = c: a:
      if c
      then a
      else {};
    listToAttrs = builtins.listToAttrs;
    getExe' = pkg: exe: "${pkg}/bin/${exe}";
    escapeShellArg = arg: "'${builtins.replaceStrings ["'"] ["'\\''"] (toString arg)}'";
    # Deep merge of plain attribute sets; lists concatenate (as NixOS
    # merges list options).
    merge = a: b:
      a
      // builtins.mapAttrs (n: v:
        if a ? ${n} && builtins.isAttrs v && builtins.isAttrs a.${n}
        then merge a.${n} v
        else if a ? ${n} && builtins.isList v && builtins.isList a.${n}
        then a.${n} ++ v
        else v)
      b;
  };

  # writeText keeps its text, so that tests can read what a module writes.
  pkgs = {
    writeText = name: text: {
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      inherit name text;
    };
    runCommand = name: _env: script: builtins.seq script "/nix/store/00000000000000000000000000000000-${name}";
    linkFarm = name: entries: builtins.deepSeq (map (e: [e.name "${e.path}"]) entries) "/nix/store/00000000000000000000000000000000-${name}";
  };

  fakePackage = name: "/nix/store/00000000000000000000000000000000-${name}";

  # --- config of one host, as the module system would compute it ----------
  nixosBinaries = {
    controller = "${fakePackage "bsfg-controller"}/bin/bsfg-controller";
    gateAgent = "${fakePackage "bsfg-gate-agent"}/bin/bsfg-gate-agent";
    natsServer = "${fakePackage "nats-server"}/bin/nats-server";
    bsfgctl = "${fakePackage "bsfgctl"}/bin/bsfgctl";
    chronyc = "${fakePackage "chrony"}/bin/chronyc";
  };

  configFor = host: let
    zone = zoneLib.normalise fx.base;
    role = zone.hosts.${host}.role;
    packages = {
      controller = fakePackage "bsfg-controller";
      gateAgent = fakePackage "bsfg-gate-agent";
      cli = fakePackage "bsfgctl";
      natsServer = fakePackage "nats-server";
    };
  in {
    networking.hostName = host;
    services.bsfg = {
      enable = true;
      inherit role packages;
      zone = fx.base;
      hostName = host;
      manageNetwork = true;
      validateConfig = true;
      requireOperatorAccess = true;
      normalisedZone = zone;
      settings = zoneLib.hostSettings {
        inherit zone host;
        paths = zoneLib.nixosPaths;
        binaries = nixosBinaries;
      };
      storage = let
        none = {
          device = null;
          fsType = "ext4";
          options = ["noatime"];
        };
      in {
        jetstream = none // {device = "/dev/disk/by-label/jetstream";};
        artifacts =
          if role == "gamma"
          then none
          else none // {device = "/dev/disk/by-label/artifacts";};
        opt = none;
      };
      firewall.enable = true;
      observability = {
        enable = true;
        nodeExporterPort = 9100;
        natsExporterPort = 7777;
        exporterPorts = [9100 7777];
        journalUpload.enable = false;
        alertRules = null;
        grafanaDashboard = null;
        commissioning = {
          class = "commissioning";
          consumer = "commissioning";
        };
      };
    };
    services.nats = {
      user = "nats";
      group = "nats";
    };
    services.keepalived.enable = role != "gamma";
    # nixpkgs' default (services.chrony.package = pkgs.chrony).
    services.chrony.package = fakePackage "chrony";
    services.openssh = {
      enable = true;
      # nixpkgs' defaults, and modules/firewall.nix's mkDefault.
      ports = [22];
      openFirewall = false;
    };
    users.users.root = {
      name = "root";
      extraGroups = [];
      openssh.authorizedKeys = {
        keys = [];
        keyFiles = [../../hosts/authorized_keys];
      };
    };
    # What the modules themselves define for the controller unit.
    systemd.services =
      if role == "gamma"
      then {}
      else {
        bsfg-controller = {
          wantedBy = [];
          requiredBy = [];
        };
        bsfg-gate-agent = {};
      };
    systemd.targets = {};
    systemd.timers = {};
    systemd.sockets = {};
    systemd.paths = {};
    fileSystems = {};
  };

  modules = {
    zone = ../../modules/zone.nix;
    base = ../../modules/base.nix;
    storage = ../../modules/storage.nix;
    firewall = ../../modules/firewall.nix;
    observability = ../../modules/observability.nix;
    nats = ../../modules/services/nats.nix;
    keepalived = ../../modules/services/keepalived.nix;
    controller = ../../modules/services/controller.nix;
    gate-agent = ../../modules/services/gate-agent.nix;
    backup = ../../modules/services/backup.nix;
    artifact-backup = ../../modules/services/artifact-backup.nix;
    probe = ../../modules/services/probe.nix;
  };

  evalModuleWith = override: evalModuleOn (cfg: lib.merge cfg override);
  # `change` maps the host's config to the one the module sees.
  evalModuleOn = change: host: path: let
    m = import path {
      config = change (configFor host);
      inherit lib pkgs;
    };
    cfg = m.config or {};
    assertions = cfg.assertions or [];
    failed = builtins.filter (a: !a.assertion) assertions;
  in
    builtins.deepSeq [(m.options or {}) cfg] {
      assertionsFailed = map (a: a.message) failed;
      config = cfg;
    };

  evalModule = evalModuleWith {};

  hosts = ["alpha" "beta" "gamma"];
  results = builtins.listToAttrs (map (host: {
      name = host;
      value = builtins.mapAttrs (_: evalModule host) modules;
    })
    hosts);

  get = host: module: results.${host}.${module}.config;
  has = re: text: builtins.match ".*${re}.*" (builtins.replaceStrings ["\n"] [" "] text) != null;

  # The role rules are assertions, not conventions: breaking one fails.
  fires = override: host: module: (evalModuleWith override host modules.${module}).assertionsFailed != [];
  # ---------------------------------------------------- one renderer, two consumers
  # Per host: the library renders with symbolic paths and binaries; put the
  # appliance's in, and it must be exactly what the modules hand to nixpkgs;
  # put the simulator's in, and it must be exactly what the simulator writes
  # and starts (modules/lib/simulator.nix's output, which
  # crates/bsfg-zonesim writes byte for byte: tests/rendered_files.rs).
  render = import ../../modules/lib/render.nix;
  zone = zoneLib.normalise fx.base;
  symbolic = prefix: attrs:
    builtins.mapAttrs (k: v:
      if builtins.isAttrs v
      then symbolic "${prefix}.${k}" v
      else "@${prefix}.${k}@")
    attrs;
  leaves = attrs:
    builtins.concatLists (map (k:
      if builtins.isAttrs attrs.${k}
      then leaves attrs.${k}
      else [attrs.${k}]) (builtins.attrNames attrs));
  symPaths = symbolic "paths" zoneLib.nixosPaths;
  symBins = symbolic "bin" zoneLib.defaultBinaries;
  fill = paths: bins: builtins.replaceStrings (leaves symPaths ++ leaves symBins) (leaves paths ++ leaves bins);
  simRun = "/run/one-renderer";
  simBins = {
    controller = "/opt/sim/bsfg-controller";
    gateAgent = "/opt/sim/bsfg-gate-agent";
    natsServer = "/opt/sim/nats-server";
    bsfgctl = "/opt/sim/bsfgctl";
    chronyc = "/opt/sim/chronyc";
  };
  sim = import ../../modules/lib/simulator.nix {
    zoneFile = ../../hosts/zone.nix;
    runDir = simRun;
    binaries = simBins;
    storageCap = null;
  };
  template = host: supervisor: requireMountPoint:
    zoneLib.hostSettings {
      inherit zone host supervisor requireMountPoint;
      paths = symPaths;
      binaries = symBins;
    };
  # The node exporter's arguments as nixpkgs' unit composes them from the
  # options (`--collector.<each>`, `--web.listen-address <address>:<port>`,
  # then extraFlags; node.nix's ExecStart), and as the simulator passes them.
  nodeExporterArgs = n: builtins.concatStringsSep " " (map (c: "--collector.${c}") n.enabledCollectors ++ ["--web.listen-address" "${n.listenAddress}:${toString n.port}"] ++ n.extraFlags);
  renderedNodeExporterArgs = t:
    builtins.concatStringsSep " "
    ((import ../../modules/lib/node-exporter.nix).host {
      settings = t;
      port = 9100;
    })
    .args;
  # What each consumer gets, as text, from one host's template.
  texts = t:
    {
      "nats.json" = t.nats.configText;
      "node exporter" = renderedNodeExporterArgs t;
      units = builtins.toJSON (builtins.mapAttrs (_: u: builtins.removeAttrs u ["restartIfChanged"]) t.units);
    }
    // (
      if t.keepalived == null
      then {}
      else {
        "keepalived.conf" = t.keepalived.configText;
        "controller.toml" = t.controller.configText;
        "gate-agent.toml" = t.gateAgent.configText;
        "polkit rule" = t.polkitRule;
      }
    );
  # What the modules hand to nixpkgs (validateConfig off: the file itself).
  handed = host: let
    m = module: (evalModuleWith {services.bsfg.validateConfig = false;} host modules.${module}).config;
    k = (m "keepalived").services.keepalived or null;
    ownUnit = module: name: u: let
      v = (m module).systemd.services.${name};
    in
      u
      // {
        inherit (v) description wants after unitConfig serviceConfig;
        wantedBy = v.wantedBy or [];
      };
    natsUnit = (m "nats").systemd.services.nats;
    t = (configFor host).services.bsfg.settings;
  in
    {
      "nats.json" = (m "nats").environment.etc."bsfg/nats.json".source.text;
      "node exporter" = nodeExporterArgs (m "observability").services.prometheus.exporters.node;
      units = builtins.toJSON (builtins.mapAttrs (_: u: builtins.removeAttrs u ["restartIfChanged"]) (
        t.units
        // {
          nats = t.units.nats // {inherit (natsUnit) wants after unitConfig;} // {serviceConfig = {inherit (natsUnit.serviceConfig) ExecStart LoadCredential;};};
        }
        // (
          if t.keepalived == null
          then {}
          else {
            bsfg-controller = ownUnit "controller" "bsfg-controller" t.units.bsfg-controller;
            bsfg-gate-agent = ownUnit "gate-agent" "bsfg-gate-agent" t.units.bsfg-gate-agent;
            keepalived = t.units.keepalived // {inherit ((m "keepalived").systemd.services.keepalived) wants after;};
          }
        )
        // (
          if t.units ? bsfg-backup
          then {
            bsfg-backup = ownUnit "backup" "bsfg-backup" t.units.bsfg-backup;
            bsfg-backup-timer = t.units.bsfg-backup-timer // {inherit ((m "backup").systemd.timers.bsfg-backup) description wantedBy timerConfig;};
          }
          else {}
        )
        // (
          if t.units ? bsfg-artifact-backup
          then {
            bsfg-artifact-backup = ownUnit "artifact-backup" "bsfg-artifact-backup" t.units.bsfg-artifact-backup;
            bsfg-artifact-backup-timer = t.units.bsfg-artifact-backup-timer // {inherit ((m "artifact-backup").systemd.timers.bsfg-artifact-backup) description wantedBy timerConfig;};
          }
          else {}
        )
        // (
          if t.units ? prometheus-blackbox-exporter
          then {
            prometheus-blackbox-exporter = t.units.prometheus-blackbox-exporter // {inherit ((m "probe").systemd.services.prometheus-blackbox-exporter) serviceConfig;};
          }
          else {}
        )
      ));
    }
    // (
      if k == null
      then {}
      else {
        # nixpkgs' services.keepalived file, from exactly the options the
        # module sets (vrrpScripts and vrrpInstances stay empty).
        "keepalived.conf" =
          if builtins.attrNames k == ["enable" "enableScriptSecurity" "extraConfig" "extraGlobalDefs"]
          then render.nixpkgsKeepalivedConf {inherit (k) enableScriptSecurity extraGlobalDefs extraConfig;}
          else throw "the keepalived module sets more than the rendered file: ${builtins.toJSON (builtins.attrNames k)}";
        "controller.toml" = (m "controller").environment.etc."bsfg/controller.toml".source.text;
        "gate-agent.toml" = (m "gate-agent").environment.etc."bsfg/gate-agent.toml".source.text;
        "polkit rule" = (m "gate-agent").security.polkit.extraConfig;
      }
    );
  simulated = host: let
    h = sim.hosts.${host};
  in
    {
      "nats.json" = h.nats.configText;
      "node exporter" = builtins.concatStringsSep " " h.nodeExporter.args;
      units = builtins.toJSON (builtins.mapAttrs (_: u: builtins.removeAttrs u ["restartIfChanged"]) h.units);
    }
    // (
      if h.keepalived == null
      then {}
      else {
        "keepalived.conf" = h.keepalived.configText;
        "controller.toml" = h.controller.configText;
        "gate-agent.toml" = h.gateAgent.configText;
        "polkit rule" = h.polkitRule;
      }
    );
  sameAs = expected: actual:
    builtins.attrNames expected
    == builtins.attrNames actual
    && builtins.all (n:
      expected.${n}
      == actual.${n}
      || throw "${n} differs:\n--- rendered\n${expected.${n}}\n--- handed over\n${actual.${n}}") (builtins.attrNames expected);
  applianceMatches = host: sameAs (builtins.mapAttrs (_: fill zoneLib.nixosPaths nixosBinaries) (texts (template host "systemd" true))) (handed host);
  simulatorMatches = host: sameAs (builtins.mapAttrs (_: fill (zoneLib.simulatorPaths simRun host) simBins) (texts (template host "process" false))) (simulated host);

  firesOn = change: host: module: (evalModuleOn change host modules.${module}).assertionsFailed != [];
  rootKeyFiles = files: cfg:
    cfg
    // {
      users.users.root =
        cfg.users.users.root
        // {
          openssh.authorizedKeys = {
            keys = [];
            keyFiles = files;
          };
        };
    };
in {
  # Secrets by path, never in the store: one assertion per store path,
  # naming the setting (the zone library would stop at the first one).
  assertion_secret_in_store = let
    bad =
      fx.base
      // {
        certificates = fx.base.certificates // {privateKey = "/nix/store/x-key.pem";};
        nats = fx.base.nats // {users = fx.base.nats.users // {gateAgent = fx.base.nats.users.gateAgent // {passwordFile = "/nix/store/x-pw";};};};
      };
    m = import modules.zone {
      config = lib.merge (configFor "alpha") {services.bsfg.zone = bad;};
      inherit lib pkgs;
    };
    failed = map (a: a.message) (builtins.filter (a: !a.assertion) m.config.assertions);
  in
    builtins.length failed
    == 2
    && has "certificates.privateKey = \"/nix/store/x-key.pem\" is in the Nix store" (builtins.elemAt failed 0)
    && has "nats.users.gateAgent.passwordFile = \"/nix/store/x-pw\" is in the Nix store" (builtins.elemAt failed 1)
    && (evalModule "alpha" modules.zone).assertionsFailed == [];
  assertion_gamma_with_keepalived = fires {services.keepalived.enable = true;} "gamma" "keepalived";
  assertion_gamma_with_controller_unit = fires {
    systemd.services.bsfg-controller = {
      wantedBy = [];
      requiredBy = [];
    };
  } "gamma" "controller";
  assertion_gamma_with_gate_agent = fires {systemd.services.bsfg-gate-agent = {};} "gamma" "gate-agent";
  assertion_gamma_with_artifacts_mount = fires {fileSystems."/artifacts" = {device = "/dev/sdb1";};} "gamma" "storage";
  # Power loss (docs/durability.md): JetStream on a journaling file system, barriers on.
  # The layout mirrors the ESP on an MD RAID1: systemd-boot on a host with
  # declared disks is refused, naming the fix; GRUB, or no declared disks, is not.
  assertion_systemd_boot_on_the_mirrored_esp = let
    failed = disks: systemdBoot:
      (evalModuleWith {
          services.bsfg.settings.installDisks = disks;
          boot.loader.systemd-boot.enable = systemdBoot;
        } "alpha"
        modules.storage)
      .assertionsFailed;
    sys0 = ["/dev/disk/by-id/ata-SYS0" "/dev/disk/by-id/ata-SYS1"];
  in
    builtins.any (m: builtins.match ".*hosts[.]alpha[.]disks puts /boot on an MD RAID1, where systemd-boot cannot be installed; in hosts/alpha/hardware.nix set boot[.]loader[.]systemd-boot[.]enable = false;.*efiInstallAsRemovable = true.*" m != null) (failed sys0 true)
    && failed sys0 false == []
    && failed [] true == [];
  assertion_jetstream_not_journaled = fires {services.bsfg.storage.jetstream.fsType = "ext2";} "gamma" "storage";
  assertion_artifacts_without_barriers = fires {services.bsfg.storage.artifacts.options = ["noatime" "nobarrier"];} "alpha" "storage";
  assertion_controller_wanted_by_boot = fires {systemd.services.bsfg-controller.wantedBy = ["multi-user.target"];} "alpha" "controller";
  # Another unit pulling the controller in is caught too.
  assertion_controller_wanted_by_another_service = fires {systemd.services.other.wants = ["bsfg-controller.service"];} "alpha" "controller";
  assertion_controller_required_by_a_target = fires {systemd.targets.multi-user.unitConfig.Requires = "foo.service bsfg-controller.service";} "alpha" "controller";
  assertion_controller_upheld_by_another_service = fires {systemd.services.other.upholds = ["bsfg-controller.service"];} "beta" "controller";
  assertion_controller_started_by_a_timer = fires {systemd.timers.kick.timerConfig.Unit = "bsfg-controller.service";} "alpha" "controller";
  assertion_controller_socket_activated = fires {systemd.sockets.bsfg-controller = {};} "alpha" "controller";
  assertion_host_without_a_way_in = firesOn (rootKeyFiles []) "gamma" "base";
  assertion_host_with_only_an_empty_key_file = firesOn (rootKeyFiles [./empty-authorized-keys]) "alpha" "base";
  assertion_keys_without_sshd = fires {services.openssh.enable = false;} "beta" "base";
  key_of_a_wheel_user_is_a_way_in =
    !(firesOn (cfg:
      lib.merge (rootKeyFiles [] cfg) {
        users.users.ops = {
          name = "ops";
          extraGroups = ["wheel"];
          openssh.authorizedKeys.keys = ["ssh-ed25519 AAAA ops"];
        };
      }) "alpha" "base");
  no_way_in_accepted_when_not_required = !(firesOn (cfg: lib.merge (rootKeyFiles [] cfg) {services.bsfg.requireOperatorAccess = false;}) "alpha" "base");
  assertion_wrong_role_module = fires {services.bsfg.role = "beta";} "alpha" "zone";

  # Every module evaluates on every role, and no assertion fires on the example zone.
  no_assertion_fires = builtins.all (host: builtins.all (r: r.assertionsFailed == []) (builtins.attrValues results.${host})) hosts;

  alpha_keepalived_instance = has "vrrp_instance bsfg_plant-a [{].*priority 150" (get "alpha" "keepalived").services.keepalived.extraConfig;
  keepalived_beta_starts_later = (get "alpha" "keepalived").systemd.timers.keepalived-boot-delay.timerConfig.OnActiveSec == "5s" && (get "beta" "keepalived").systemd.timers.keepalived-boot-delay.timerConfig.OnActiveSec == "15s";
  beta_keepalived_peer = has "unicast_peer [{] +10[.]20[.]0[.]11 +[}]" (get "beta" "keepalived").services.keepalived.extraConfig;
  gamma_no_keepalived = !((get "gamma" "keepalived") ? services);
  gamma_no_controller_unit = !((get "gamma" "controller") ? systemd);
  gamma_no_gate_agent = !((get "gamma" "gate-agent") ? systemd);
  gamma_no_artifacts_mount = !((get "gamma" "storage").fileSystems ? "/artifacts");
  alpha_artifacts_mount = (get "alpha" "storage").fileSystems."/artifacts".device == "/dev/disk/by-label/artifacts";
  controller_not_wanted_by_anything = !((get "alpha" "controller").systemd.services.bsfg-controller ? wantedBy);
  controller_type_notify_watchdog = let
    sc = (get "beta" "controller").systemd.services.bsfg-controller.serviceConfig;
  in
    sc.Type == "notify" && sc.WatchdogSec == "10s" && sc.ProtectSystem == "strict" && sc.ReadWritePaths == ["/artifacts"];
  agent_unit_restarts_forever_with_backoff = let
    unit = (get "alpha" "gate-agent").systemd.services.bsfg-gate-agent;
    sc = unit.serviceConfig;
  in
    sc.Restart
    == "always"
    && sc.RestartSec == "1s"
    && sc.RestartSteps == 3
    && sc.RestartMaxDelaySec == "8s"
    && unit.unitConfig.StartLimitIntervalSec == 0
    # Only its own NATS password: the controller's credentials it only looks at (gate 5).
    && sc.LoadCredential == ["nats-password:/var/lib/bsfg/secrets/nats-gate-agent-password"];
  controller_credentials_from_zone_paths =
    (get "alpha" "controller").systemd.services.bsfg-controller.serviceConfig.LoadCredential
    == ["cert.pem:/var/lib/bsfg/tls/controller.pem" "key.pem:/var/lib/bsfg/tls/controller.key" "ca.pem:/var/lib/bsfg/tls/ca.pem" "nats-password:/var/lib/bsfg/secrets/nats-controller-password" "nats-system-password:/var/lib/bsfg/secrets/nats-system-password"];
  nats_settings_carry_the_accounts = let
    st = (get "gamma" "nats").services.nats.settings;
  in
    st.system_account == "$SYS" && !(st ? no_auth_user) && (builtins.head st.accounts."$SYS".users).password == fx.base.nats.systemUser.passwordHash;
  nats_route_credentials_by_path =
    (get "gamma" "nats").systemd.services.nats.serviceConfig.LoadCredential
    == ["route-cert.pem:/var/lib/bsfg/tls/nats-route.pem" "route-key.pem:/var/lib/bsfg/tls/nats-route.key" "ca.pem:/var/lib/bsfg/tls/ca.pem"];
  # The module's firewall rules are the zone library's (which the simulator loads).
  firewall_rules_are_the_librarys = builtins.all (h:
    (get h "firewall").networking.firewall.extraInputRules
    == (import ../../modules/lib/firewall.nix).extraInputRules {
      zone = (configFor h).services.bsfg.normalisedZone;
      settings = (configFor h).services.bsfg.settings;
      exporterPorts = [9100 7777];
      sshPorts = [22];
    })
  hosts;
  # SSH: from the management network only (the default ssh.allowFrom), with
  # NixOS's every-network opening turned off; a site that turns it back on
  # is told it contradicts the zone.
  firewall_ssh_from_management_network_only = let
    c = get "gamma" "firewall";
  in
    has "ip saddr [{] 10[.]30[.]0[.]0/24 [}] tcp dport [{] 22 [}] accept" c.networking.firewall.extraInputRules
    && c.services.openssh.openFirewall == false
    && (evalModuleWith {services.openssh.openFirewall = true;} "alpha" modules.firewall).assertionsFailed
    == ["services.bsfg: services.openssh.openFirewall = true opens SSH on every network, but the zone admits SSH only from ssh.allowFrom (10.30.0.0/24). Remove the setting, or widen ssh.allowFrom in the zone description (e.g. [ \"0.0.0.0/0\" ])."];
  firewall_ssh_follows_allow_from_and_ports = let
    # Replaced, not merged (the stub merge concatenates lists).
    c =
      (evalModuleOn (cfg:
        cfg
        // {
          services =
            cfg.services
            // {
              openssh = cfg.services.openssh // {ports = [2222];};
              bsfg = cfg.services.bsfg // {normalisedZone = zoneLib.normalise (fx.base // {ssh.allowFrom = ["10.30.0.0/24" "192.0.2.7/32"];});};
            };
        }) "beta"
      modules.firewall)
      .config;
  in
    has "ip saddr [{] 10[.]30[.]0[.]0/24, 192[.]0[.]2[.]7/32 [}] tcp dport [{] 2222 [}] accept" c.networking.firewall.extraInputRules;
  firewall_no_ssh_rule_without_sshd =
    !(has "tcp dport [{] 22 [}]" (evalModuleWith {services.openssh.enable = false;} "alpha" modules.firewall).config.networking.firewall.extraInputRules);
  polkit_rule_names_controller_unit = builtins.match ".*bsfg-controller[.]service.*" (get "alpha" "gate-agent").security.polkit.extraConfig != null;
  polkit_rule_exact_verbs = let
    rule = builtins.replaceStrings ["\n"] [" "] (get "alpha" "gate-agent").security.polkit.extraConfig;
  in
    builtins.match ".*verb == \"kill\" [|][|] verb == \"reset-failed\".*" rule != null && builtins.match ".*verb == \"reload\".*" rule == null;
  controller_config_checked_at_build = builtins.match ".*checked.*" (get "alpha" "controller").environment.etc."bsfg/controller.toml".source != null;
  nats_on_every_host = builtins.all (h: (get h "nats").services.nats.enable) hosts;
  nats_store_dir_is_jetstream_mount = (get "gamma" "nats").services.nats.dataDir == "/data/jetstream";
  firewall_vrrp_only_on_service_hosts = let
    rules = h: (get h "firewall").networking.firewall.extraInputRules;
    hasVrrp = h: builtins.match ".*ip protocol 112.*" (builtins.replaceStrings ["\n"] [" "] (rules h)) != null;
  in
    hasVrrp "alpha" && hasVrrp "beta" && !(hasVrrp "gamma");
  firewall_controller_port_to_vip_only = builtins.match ".*ip daddr 10[.]20[.]0[.]100 tcp dport 9443 accept.*" (builtins.replaceStrings ["\n"] [" "] (get "alpha" "firewall").networking.firewall.extraInputRules) != null;
  exporters_on_management_address = (get "beta" "observability").services.prometheus.exporters.node.listenAddress == "10.30.0.12";
  # gamma's service probe: nixpkgs' blackbox exporter gets the library's
  # text, and its unit the credentials under the names the text reads.
  probe_module_hands_nixpkgs_the_rendered_config = let
    bb = (get "gamma" "probe").services.prometheus.exporters.blackbox;
    settings = (configFor "gamma").services.bsfg.settings;
  in
    bb.enable
    && bb.configFile.text == settings.probe.configText
    && bb.listenAddress == "10.30.0.13"
    && bb.port == 9115;
  probe_credentials_match_the_config_paths = let
    sc = (get "gamma" "probe").systemd.services.prometheus-blackbox-exporter.serviceConfig;
  in
    sc.LoadCredential
    == ["cert.pem:/var/lib/bsfg/tls/probe.pem" "key.pem:/var/lib/bsfg/tls/probe.key" "ca.pem:/var/lib/bsfg/tls/ca.pem"]
    && sc.AmbientCapabilities == []
    && zoneLib.nixosPaths.probe.privateKey == "/run/credentials/prometheus-blackbox-exporter.service/key.pem";
  probe_only_on_gamma = (get "alpha" "probe") == {} && (get "beta" "probe") == {};
  probe_scrape_job_shipped = builtins.fromJSON (get "alpha" "observability").environment.etc."bsfg/monitoring/scrape-probe.yml".text == {scrape_configs = [((import ../../modules/lib/probe.nix).scrapeConfig (configFor "alpha").services.bsfg.normalisedZone)];};
  nats_exporter_has_endpoint_flags = (get "gamma" "observability").services.prometheus.exporters.nats.extraFlags == ["-varz" "-healthz"];
  zone_json_for_bsfgctl = let
    z = builtins.fromJSON (get "beta" "observability").environment.etc."bsfg/zone.json".text;
  in
    z.endpoint == "https://10.20.0.100:9443" && z.hosts.gamma.nodeExporter == "10.30.0.13:9100" && z.commissioning.consumer == "commissioning" && z.hosts.beta.keepalived.unicastPeers == ["10.20.0.11"];

  # One renderer: per host, the appliance gets the library's bytes, and so
  # does the simulator (with its paths; its agent supervises the controller
  # as a child process and needs no mount point, the two documented
  # differences).
  appliance_gets_the_rendered_files = builtins.all applianceMatches hosts;
  simulator_gets_the_rendered_files = builtins.all simulatorMatches hosts;
  only_supervisor_and_mount_point_differ = let
    lines = t: builtins.filter (l: builtins.isString l && l != "") (builtins.split "\n" (texts t)."gate-agent.toml");
    a = lines (template "alpha" "systemd" true);
    b = lines (template "alpha" "process" false);
  in
    # The credentials the agent checks (and the certificate and CA it reads)
    # follow the supervisor: systemd hands the zone's files to the
    # controller (LoadCredential=), a spawned controller reads its own in place.
    builtins.filter (l: !(builtins.elem l b) && builtins.match "(tls_|nats_system_password|path = |trust = ).*" l == null) a == ["require_mount_point = true" "supervisor = \"systemd\""];
  # The keepalived.conf the appliance runs declares the track file and the
  # script before the instance that names them (keepalived resolves them
  # while parsing the instance).
  keepalived_blocks_in_an_order_keepalived_accepts = let
    t = (template "alpha" "systemd" true).keepalived.configText;
    at = re: builtins.stringLength (builtins.head (builtins.split re t));
  in
    at "vrrp_script " < at "vrrp_instance " && at "track_file bsfg_gate [{]" < at "vrrp_instance ";
  # nixpkgs warns for a unit ordered after network-online.target that
  # neither wants, requires nor binds to it (nixos/modules/system/boot/systemd.nix).
  no_network_online_warning = builtins.all (host:
    builtins.all (u: !(builtins.elem "network-online.target" (u.after or [])) || builtins.elem "network-online.target" (u.wants or []))
    (builtins.attrValues (template host "systemd" true).units))
  hosts;
  gate_agent_is_notify_with_watchdog = let
    sc = (get "alpha" "gate-agent").systemd.services.bsfg-gate-agent.serviceConfig;
  in
    sc.Type == "notify" && sc.NotifyAccess == "main" && sc.WatchdogSec == "10s" && sc.Restart == "always";
  gate_agent_config_checked_at_build = has "checked" (get "beta" "gate-agent").environment.etc."bsfg/gate-agent.toml".source;
  nats_runs_the_tested_server_with_the_rendered_file = (get "gamma" "nats").systemd.services.nats.serviceConfig.ExecStart == "${nixosBinaries.natsServer} -c /etc/bsfg/nats.json";
  storage_no_warning_for_the_intended_layout = builtins.all (host: (get host "storage").warnings == []) hosts;
  storage_warns_for_a_shared_device = (evalModuleWith {services.bsfg.storage.artifacts.device = "/dev/disk/by-label/jetstream";} "alpha" modules.storage).config.warnings != [];
  deployment_in_opt = builtins.elem "L+ /opt/bsfg/deployment - - - - /nix/store/00000000000000000000000000000000-bsfg-deployment-alpha" (get "alpha" "storage").systemd.tmpfiles.rules;
}
