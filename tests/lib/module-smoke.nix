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
    inherit (builtins) filter;
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

  pkgs = {
    coreutils = fakePackage "coreutils";
    writeShellScript = name: text: builtins.seq text "/nix/store/00000000000000000000000000000000-${name}";
    runCommand = name: _env: script: builtins.seq script "/nix/store/00000000000000000000000000000000-${name}";
    formats.toml = _: {
      generate = name: value: builtins.seq (builtins.toJSON value) "/nix/store/00000000000000000000000000000000-${name}";
    };
  };

  fakePackage = name: "/nix/store/00000000000000000000000000000000-${name}";

  # --- config of one host, as the module system would compute it ----------
  configFor = host: let
    zone = zoneLib.normalise fx.base;
    role = zone.hosts.${host}.role;
    packages = {
      controller = fakePackage "bsfg-controller";
      gateAgent = fakePackage "bsfg-gate-agent";
      cli = fakePackage "bsfgctl";
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
      normalisedZone = zone;
      settings = zoneLib.hostSettings {
        inherit zone host;
        paths = zoneLib.nixosPaths;
        binaries = {
          controller = "${packages.controller}/bin/bsfg-controller";
          gateAgent = "${packages.gateAgent}/bin/bsfg-gate-agent";
        };
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
  };

  evalModuleWith = override: host: path: let
    m = import path {
      config = lib.merge (configFor host) override;
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

  # The role rules are assertions, not conventions: breaking one fails.
  fires = override: host: module: (evalModuleWith override host modules.${module}).assertionsFailed != [];
in {
  assertion_gamma_with_keepalived = fires {services.keepalived.enable = true;} "gamma" "keepalived";
  assertion_gamma_with_controller_unit = fires {
    systemd.services.bsfg-controller = {
      wantedBy = [];
      requiredBy = [];
    };
  } "gamma" "controller";
  assertion_gamma_with_gate_agent = fires {systemd.services.bsfg-gate-agent = {};} "gamma" "gate-agent";
  assertion_gamma_with_artifacts_mount = fires {fileSystems."/artifacts" = {device = "/dev/sdb1";};} "gamma" "storage";
  assertion_controller_wanted_by_boot = fires {systemd.services.bsfg-controller.wantedBy = ["multi-user.target"];} "alpha" "controller";
  assertion_wrong_role_module = fires {services.bsfg.role = "beta";} "alpha" "zone";

  # Every module evaluates on every role, and no assertion fires on the example zone.
  no_assertion_fires = builtins.all (host: builtins.all (r: r.assertionsFailed == []) (builtins.attrValues results.${host})) hosts;

  alpha_keepalived_instance = (get "alpha" "keepalived").services.keepalived.vrrpInstances.bsfg_plant-a.priority == 150;
  keepalived_beta_starts_later = (get "alpha" "keepalived").systemd.timers.keepalived-boot-delay.timerConfig.OnActiveSec == "5s" && (get "beta" "keepalived").systemd.timers.keepalived-boot-delay.timerConfig.OnActiveSec == "15s";
  beta_keepalived_peer = (get "beta" "keepalived").services.keepalived.vrrpInstances.bsfg_plant-a.unicastPeers == ["10.20.0.11"];
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
    && !(sc ? LoadCredential);
  controller_credentials_from_zone_paths =
    (get "alpha" "controller").systemd.services.bsfg-controller.serviceConfig.LoadCredential
    == ["cert.pem:/var/lib/bsfg/tls/controller.pem" "key.pem:/var/lib/bsfg/tls/controller.key" "ca.pem:/var/lib/bsfg/tls/ca.pem" "nats-system-password:/var/lib/bsfg/secrets/nats-system-password"];
  nats_settings_carry_the_accounts = let
    st = (get "gamma" "nats").services.nats.settings;
  in
    st.system_account == "$SYS" && st.no_auth_user == "bsfg" && (builtins.head st.accounts."$SYS".users).password == fx.base.nats.systemUser.passwordHash;
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
  exporters_on_management_address = (get "beta" "observability").services.prometheus.exporters.node.listenAddress == "10.20.0.12";
  nats_exporter_has_endpoint_flags = (get "gamma" "observability").services.prometheus.exporters.nats.extraFlags == ["-varz" "-healthz"];
  zone_json_for_bsfgctl = let
    z = builtins.fromJSON (get "beta" "observability").environment.etc."bsfg/zone.json".text;
  in
    z.endpoint == "https://10.20.0.100:9443" && z.hosts.gamma.nodeExporter == "10.20.0.13:9100" && z.commissioning.consumer == "commissioning" && z.hosts.beta.keepalived.unicastPeers == ["10.20.0.11"];
}
