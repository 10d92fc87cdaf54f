# Entry point for the zone simulator's systemd mode (bsfg-zonesim --init
# systemd): what each host's container holds, so that systemd 252 (Debian
# bookworm, systemd-nspawn) runs the appliance's own units.
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./modules/lib/container.nix { zoneFile = ./hosts/zone.nix; runDir = "/some/run/dir"; }'
#
# Per host: `files` (container path -> { text; mode; }), `links` (container
# path -> symlink target), `etcDirs` (the directories the simulator binds,
# read-only, from <runDir>/<host>/root/, every file and link lies in one),
# `binds` (state, credentials and programs: { source; target; readOnly; }),
# `passwordFiles` (where on the machine the simulator writes each NATS
# password this host's units load: { system; controller; gateAgent;
# backup; }, null where none), `units` (the units whose journal and
# `systemd-analyze security` the simulator reports) and `restartIfChanged`
# (unit file name -> whether a `nixos-rebuild switch` that changes it
# restarts it: the units data's `restartIfChanged`, nixpkgs' default true
# where the appliance sets none). At the top, `pki`:
# the zone's certificate plan with the appliance's install paths (what
# `bsfgctl pki issue` installs), which the simulator issues into
# `staging` (<staging>/<host>/<path on the host>). Everything is the NixOS host's data (`hostSettings` with
# `nixosPaths` and the systemd supervisor); only the store paths of the
# programs differ: `containerise` replaces them, and tests/lib/cases.nix
# proves the units are otherwise byte for byte the appliance's.
{
  zoneFile,
  runDir,
  # Host paths of the programs bound into every container:
  # { controller; gateAgent; natsServer; bsfgctl; blackboxExporter;
  # nodeExporter; } (absolute; blackboxExporter: Debian's, bound into
  # gamma's container when the zone has a service probe; nodeExporter:
  # Debian's prometheus-node-exporter, bound into every container).
  hostBinaries ? {
    controller = "/usr/local/bin/bsfg-controller";
    gateAgent = "/usr/local/bin/bsfg-gate-agent";
    natsServer = "/usr/local/bin/nats-server";
    bsfgctl = "/usr/local/bin/bsfgctl";
    blackboxExporter = "/usr/bin/prometheus-blackbox-exporter";
    nodeExporter = "/usr/bin/prometheus-node-exporter";
  },
  # The node exporter's port (services.bsfg.observability.nodeExporterPort),
  # as in simulator.nix.
  nodeExporterPort ? (import ./node-exporter.nix).defaultPort,
  # As in simulator.nix; the password files are bound to secretsDir below.
  natsSystemUser ? null,
  natsUsers ? null,
  storageCap ? "256 MiB",
}: let
  inherit (builtins) attrNames attrValues concatMap concatStringsSep dirOf elem head listToAttrs mapAttrs match replaceStrings toString;
  lib = import ./zone.nix;
  render = import ./render.nix;

  # Where the operator's secrets are on the NixOS host is theirs to choose;
  # the container's copies of the NATS passwords (LoadCredential= sources).
  secretsDir = "/var/lib/bsfg/secrets";
  inContainer = name: u:
    if u == null
    then null
    else u // {passwordFile = "${secretsDir}/nats-${name}-password";};
  zone = import ./simulated-zone.nix {
    inherit zoneFile storageCap;
    natsSystemUser = inContainer "system" natsSystemUser;
    natsUsers =
      if natsUsers == null
      then null
      else
        {
          controller = inContainer "controller" natsUsers.controller;
          gateAgent = inContainer "gate-agent" natsUsers.gateAgent;
        }
        # The snapshots' user: in nats-server's configuration and in
        # gamma's bsfg-backup.service, as on the appliance.
        // (
          if natsUsers ? backup
          then {backup = inContainer "backup" natsUsers.backup;}
          else {}
        );
  };

  # ------------------------------------------------------------ credentials

  # The operator's credential files live on the machine as `bsfgctl pki
  # issue --staging` lays them out, one tree per host; each container binds
  # the directories of its LoadCredential= sources from that tree. A
  # directory, not each file: a file replaced by a rename (bsfg-pki writes
  # atomically, as an operator's `install` or `mv` does) is then seen
  # inside, where a bound file would keep its old inode.
  staging = "${runDir}/appliance";
  onMachine = name: p: "${staging}/${name}${p}";
  pkiPlan = (import ./pki.nix).plan {
    inherit zone;
    installsFor = (import ./pki.nix).applianceInstalls zone;
  };
  # "name:path" of every LoadCredential= of the host's units -> the paths.
  credentialSources = s:
    concatMap (
      u:
        map (e: let
          m = match "[^:]*:(.*)" e;
        in
          if m == null
          then throw "container.nix: LoadCredential=${e} names no path"
          else head m)
        (u.serviceConfig.LoadCredential or [])
    ) (attrValues s.units);
  credentialDirs = s:
    attrNames (listToAttrs (map (p: {
        name = dirOf p;
        value = null;
      })
      (credentialSources s)));

  # ------------------------------------------------------------ store paths

  # What the NixOS module puts into ExecStart (packages in the Nix store)
  # and where the container has the same programs (bound read-only).
  storeBinaries = {
    controller = "/nix/store/00000000000000000000000000000000-bsfg/bin/bsfg-controller";
    gateAgent = "/nix/store/00000000000000000000000000000000-bsfg/bin/bsfg-gate-agent";
    natsServer = "/nix/store/00000000000000000000000000000000-nats-server/bin/nats-server";
    bsfgctl = "/nix/store/00000000000000000000000000000000-bsfg/bin/bsfgctl";
  };
  containerBinaries = {
    controller = "/usr/local/bin/bsfg-controller";
    gateAgent = "/usr/local/bin/bsfg-gate-agent";
    natsServer = "/usr/local/bin/nats-server";
    bsfgctl = "/usr/local/bin/bsfgctl";
    # nixpkgs' prometheus-blackbox-exporter (no store path of ours to replace).
    blackboxExporter = "/usr/local/bin/blackbox_exporter";
    # nixpkgs' prometheus-node-exporter (bin/node_exporter), likewise.
    nodeExporter = "/usr/local/bin/node_exporter";
  };
  names = attrNames storeBinaries;
  containerise = replaceStrings (map (n: storeBinaries.${n}) names) (map (n: containerBinaries.${n}) names);

  appliance = host:
    lib.hostSettings {
      inherit zone host;
      paths = lib.nixosPaths;
      supervisor = "systemd";
      binaries = storeBinaries;
      # /artifacts is a bind mount in the container: a real mount point.
      requireMountPoint = true;
    };

  # ------------------------------------------------------------ nixpkgs' units

  # nixpkgs' services.nats unit (nixos/modules/services/networking/nats.nix),
  # with the appliance's additions (units.nix: ExecStart, ordering,
  # RequiresMountsFor) as modules/services/nats.nix merges them.
  natsUnit = s:
    render.unitFile {
      description = "NATS messaging system";
      wantedBy = ["multi-user.target"];
      inherit (s.units.nats) wants;
      after = ["network.target"] ++ s.units.nats.after;
      inherit (s.units.nats) unitConfig;
      serviceConfig = {
        Type = "simple";
        inherit (s.units.nats.serviceConfig) ExecStart LoadCredential;
        ExecReload = "/bin/kill -HUP $MAINPID";
        KillMode = "mixed";
        KillSignal = "SIGUSR2";
        SuccessExitStatus = ["0" "SIGUSR2"];
        TimeoutStopSec = "150";
        Restart = "on-failure";
        User = "nats";
        Group = "nats";
        CapabilityBoundingSet = "";
        LimitNOFILE = 800000;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        NoNewPrivileges = true;
        PrivateDevices = true;
        PrivateTmp = true;
        PrivateUsers = true;
        ProcSubset = "pid";
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHome = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectProc = "invisible";
        ProtectSystem = "strict";
        ReadWritePaths = [s.paths.jetstream];
        RestrictAddressFamilies = ["AF_INET" "AF_INET6"];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        SystemCallFilter = ["@system-service" "~@privileged"];
        UMask = "0077";
      };
    };

  # nixpkgs' services.keepalived unit and its boot-delay timer
  # (nixos/modules/services/networking/keepalived/default.nix), with the
  # appliance's ordering after the gate agent and its timer delay
  # (modules/services/keepalived.nix). Debian's keepalived binary.
  keepalivedConfig = "/etc/keepalived/keepalived.conf";
  # Debian's keepalived in the container's root (not bound in).
  keepalivedProgram = "/usr/sbin/keepalived";
  keepalivedUnit = s:
    render.unitFile {
      description = "Keepalive Daemon (LVS and VRRP)";
      wantedBy = [];
      wants = ["network-online.target"] ++ s.units.keepalived.wants;
      after = ["network.target" "network-online.target"] ++ s.units.keepalived.after;
      unitConfig = {};
      serviceConfig = {
        Type = "forking";
        PIDFile = "/run/keepalived.pid";
        KillMode = "process";
        RuntimeDirectory = "keepalived";
        ExecStart = "${keepalivedProgram} -f ${keepalivedConfig} -p /run/keepalived.pid";
        ExecReload = "/bin/kill -HUP $MAINPID";
        Restart = "always";
        RestartSec = "1s";
      };
    };
  keepalivedTimer = s: ''
    [Unit]
    After=network.target network-online.target
    Description=Keepalive Daemon delay to avoid instant transition to MASTER state
    Requires=network-online.target

    [Timer]
    OnActiveSec=${toString s.keepalived.bootDelaySeconds}s
    Unit=keepalived.service

    [Install]
    WantedBy=multi-user.target
  '';

  # mkExporterConf's unit (nixos/modules/services/monitoring/prometheus/
  # exporters.nix, read at 01241074): what every nixpkgs exporter's unit
  # starts from; the exporter's serviceOpts, and the appliance's additions,
  # go over it (`serviceConfig`).
  exporterUnit = {
    description,
    serviceConfig,
  }:
    render.unitFile {
      inherit description;
      wantedBy = ["multi-user.target"];
      wants = [];
      after = ["network.target"];
      unitConfig = {};
      serviceConfig =
        {
          Restart = "always";
          PrivateTmp = true;
          WorkingDirectory = "/tmp";
          DynamicUser = true;
          CapabilityBoundingSet = [""];
          DeviceAllow = [""];
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          NoNewPrivileges = true;
          PrivateDevices = true;
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectSystem = "strict";
          RemoveIPC = true;
          RestrictAddressFamilies = ["AF_INET" "AF_INET6"];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          SystemCallArchitectures = "native";
          UMask = "0077";
        }
        // serviceConfig;
    };

  # nixpkgs' prometheus-blackbox-exporter.service (mkExporterConf with the
  # serviceOpts of exporters/blackbox.nix), with what the appliance adds
  # (units.nix, as modules/services/probe.nix merges it: LoadCredential=,
  # no capabilities, a system-call filter). The configuration, which NixOS
  # checks into the store, is /etc/bsfg/probe-blackbox.json here.
  probeConfig = "/etc/bsfg/probe-blackbox.json";
  probeUnit = s: let
    sc = s.units.prometheus-blackbox-exporter.serviceConfig;
  in
    exporterUnit {
      description = "Prometheus blackbox exporter (the zone's service probe)";
      serviceConfig = {
        User = "blackbox-exporter";
        Group = "blackbox-exporter";
        ExecStart = "${containerBinaries.blackboxExporter} --web.listen-address ${s.probe.listen.address}:${toString s.probe.listen.port} --config.file ${probeConfig}";
        ExecReload = "/bin/kill -HUP $MAINPID";
        inherit (sc) LoadCredential SystemCallFilter ProtectProc ProcSubset;
        # mkForce in modules/services/probe.nix: [] renders no line.
        CapabilityBoundingSet = sc.CapabilityBoundingSet;
      };
    };

  # nixpkgs' prometheus-node-exporter.service, as
  # services.prometheus.exporters.node (modules/observability.nix) makes it
  # on every host: mkExporterConf's unit merged with node.nix's serviceOpts
  # (read at 04c7868c; the pinned 531670d8 is not stored): DynamicUser =
  # false, so the module creates the system user and group node-exporter
  # (sysusers below) and User= and Group= name them; RuntimeDirectory;
  # RestrictAddressFamilies AF_INET AF_INET6 (mkExporterConf) plus AF_UNIX
  # (the systemd collector's D-Bus) and AF_NETLINK (netdev is not
  # disabled); ProtectClock = false (timex is not disabled). ExecStart is
  # node.nix's `node_exporter --collector.<each> --web.listen-address
  # <address>:<port> <extraFlags>`, i.e. the library's `args`
  # (node-exporter.nix), the appliance's paths in the textfile flags. No
  # --collector.filesystem.mount-points-exclude, unlike the process mode:
  # the container binds the state at the appliance's mount points
  # (/artifacts, /data/jetstream), which the exporter's default exclusion
  # keeps, as on the appliance; the process mode's hosts keep theirs under
  # the run directory, which may lie in the excluded /run.
  nodeExporterUser = "node-exporter";
  nodeExporterUnit = s: let
    e = (import ./node-exporter.nix).host {
      settings = s;
      port = nodeExporterPort;
    };
  in
    exporterUnit {
      # mkExporterConf sets no description; this one is the simulator's.
      description = "Prometheus node exporter (host metrics)";
      serviceConfig = {
        DynamicUser = false;
        User = nodeExporterUser;
        Group = nodeExporterUser;
        RuntimeDirectory = "prometheus-node-exporter";
        ProtectClock = false;
        RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK"];
        ExecStart = concatStringsSep " " ([containerBinaries.nodeExporter] ++ e.args);
      };
    };

  # ------------------------------------------------------------ users, dirs

  # users.users of the modules (isSystemUser), with fixed ids: the
  # container's /etc is fresh at every boot while JetStream and /artifacts
  # persist, so an id must not depend on the order sysusers runs in.
  sysusers = s: let
    backs = s.units ? bsfg-backup;
    artifactBacks = s.units ? bsfg-artifact-backup;
  in
    concatStringsSep "\n" ([
        "u nats 980 \"NATS daemon user\" ${s.paths.jetstream}"
        # exporters.nix: users.users.node-exporter (isSystemUser, its group).
        "u ${nodeExporterUser} 987 \"Prometheus node exporter service user\""
      ]
      ++ (
        if s.runs.gateAgent
        then [
          "g ${lib.artifactsGroup} 981"
          "u ${lib.controllerUser} 982 \"BSFG zone controller\""
          "m ${lib.controllerUser} ${lib.artifactsGroup}"
          "u ${lib.agentUser} 983 \"BSFG gate agent\""
          "m ${lib.agentUser} ${lib.artifactsGroup}"
          "u ${s.keepalived.checkScript.user} 984 \"keepalived health-check scripts\""
        ]
        else []
      )
      # modules/services/backup.nix: users.users.bsfg-backup (its group too).
      ++ (
        if backs
        then ["u bsfg-backup 985 \"BSFG zone snapshots\""]
        else []
      )
      # modules/services/artifact-backup.nix: users.users.bsfg-artifact-backup
      # (its group too; /artifacts is read through SupplementaryGroups=).
      ++ (
        if artifactBacks
        then ["u bsfg-artifact-backup 986 \"BSFG artifact store snapshots\""]
        else []
      ))
    + "\n";

  # systemd.tmpfiles.rules of modules/storage.nix and modules/services/nats.nix.
  tmpfiles = s:
    concatStringsSep "\n" ([
        "d ${s.paths.opt} 0755 root root -"
        "d ${s.paths.jetstream} 0750 nats nats -"
      ]
      ++ (
        if s.runs.artifacts
        then ["d ${s.paths.artifacts} 2770 ${lib.controllerUser} ${lib.artifactsGroup} -"]
        else []
      ))
    + "\n";

  # ------------------------------------------------------------ one host

  host = name: let
    s = appliance name;
    sim = lib.simulatorPaths runDir name;
    service = s.runs.gateAgent;
    backs = s.units ? bsfg-backup;
    artifactBacks = s.units ? bsfg-artifact-backup;
    probes = s.probe != null;
    file = text: {
      text = containerise text;
      mode = "0644";
    };
    unitDir = "/etc/systemd/system";
    wants = unit: {
      name = "${unitDir}/multi-user.target.wants/${unit}";
      value = "../${unit}";
    };
    own = u: {
      name = "${unitDir}/${u.name}";
      value = file u.text;
    };
  in {
    files = listToAttrs (
      [
        {
          name = s.paths.natsConfig;
          value = file s.nats.configText;
        }
        {
          name = "${unitDir}/nats.service";
          value = file (natsUnit s);
        }
        {
          name = "${unitDir}/prometheus-node-exporter.service";
          value = file (nodeExporterUnit s);
        }
        {
          name = "/etc/sysusers.d/bsfg.conf";
          value = file (sysusers s);
        }
        {
          name = "/etc/tmpfiles.d/bsfg.conf";
          value = file (tmpfiles s);
        }
      ]
      ++ (
        if service
        then [
          {
            name = s.paths.controllerConfig;
            value = file s.controller.configText;
          }
          {
            name = s.paths.agentConfig;
            value = file s.gateAgent.configText;
          }
          {
            name = keepalivedConfig;
            value = file s.keepalived.configText;
          }
          {
            name = "/etc/polkit-1/rules.d/10-bsfg.rules";
            value = file s.polkitRule;
          }
          (own s.units.bsfg-controller)
          (own s.units.bsfg-gate-agent)
          {
            name = "${unitDir}/keepalived.service";
            value = file (keepalivedUnit s);
          }
          {
            name = "${unitDir}/keepalived-boot-delay.timer";
            value = file (keepalivedTimer s);
          }
        ]
        else []
      )
      # gamma's scheduled snapshots (modules/services/backup.nix): the
      # NixOS service attribute `bsfg-backup` is bsfg-backup.service.
      ++ (
        if backs
        then [
          {
            name = "${unitDir}/bsfg-backup.service";
            value = file s.units.bsfg-backup.text;
          }
          (own s.units.bsfg-backup-timer)
        ]
        else []
      )
      # alpha's and beta's artifact snapshots (modules/services/
      # artifact-backup.nix): bsfg-artifact-backup.service and its timer.
      ++ (
        if artifactBacks
        then [
          {
            name = "${unitDir}/bsfg-artifact-backup.service";
            value = file s.units.bsfg-artifact-backup.text;
          }
          (own s.units.bsfg-artifact-backup-timer)
        ]
        else []
      )
      ++ (
        if probes
        then [
          {
            name = probeConfig;
            value = file s.probe.configText;
          }
          {
            name = "${unitDir}/prometheus-blackbox-exporter.service";
            value = file (probeUnit s);
          }
        ]
        else []
      )
    );
    links = listToAttrs (
      [(wants "nats.service") (wants "prometheus-node-exporter.service")]
      # Masked: remounting the root per /etc/fstab means nothing on the
      # container's overlay root and fails now and then (a difference from
      # a NixOS host, whose root is its own disk).
      ++ [
        {
          name = "${unitDir}/systemd-remount-fs.service";
          value = "/dev/null";
        }
      ]
      ++ (
        if service
        then [(wants lib.agentUnit) (wants "keepalived-boot-delay.timer")]
        else []
      )
      ++ (
        if backs
        then [
          {
            name = "${unitDir}/timers.target.wants/bsfg-backup.timer";
            value = "../bsfg-backup.timer";
          }
        ]
        else []
      )
      ++ (
        if artifactBacks
        then [
          {
            name = "${unitDir}/timers.target.wants/bsfg-artifact-backup.timer";
            value = "../bsfg-artifact-backup.timer";
          }
        ]
        else []
      )
      ++ (
        if probes
        then [(wants "prometheus-blackbox-exporter.service")]
        else []
      )
    );
    etcDirs =
      ["/etc/bsfg" unitDir "/etc/sysusers.d" "/etc/tmpfiles.d"]
      ++ (
        if service
        then ["/etc/keepalived" "/etc/polkit-1/rules.d"]
        else []
      );
    binds = let
      rw = source: target: {
        inherit source target;
        readOnly = false;
      };
      ro = source: target: {
        inherit source target;
        readOnly = true;
      };
    in
      [
        (rw sim.jetstream s.paths.jetstream)
        (ro hostBinaries.natsServer containerBinaries.natsServer)
        (ro hostBinaries.nodeExporter containerBinaries.nodeExporter)
      ]
      ++ (
        if service
        then [
          (rw sim.artifacts s.paths.artifacts)
          (ro hostBinaries.controller containerBinaries.controller)
          (ro hostBinaries.gateAgent containerBinaries.gateAgent)
        ]
        else []
      )
      # Every LoadCredential= source's directory (route certificate and CA
      # for nats.service; the controller's certificate, key and passwords;
      # each daemon's own NATS password), as the description places them.
      ++ (
        if backs || artifactBacks
        then [(ro hostBinaries.bsfgctl containerBinaries.bsfgctl)]
        else []
      )
      ++ (
        if backs
        then [
          # /var/lib/bsfg-backup (StateDirectory=): the snapshots and the
          # metrics file, kept across reboots as on gamma's disk.
          (rw sim.backupState s.paths.backupState)
        ]
        else []
      )
      ++ (
        if artifactBacks
        then [
          # /var/lib/bsfg-artifact-backup (StateDirectory=): likewise on
          # alpha and beta.
          (rw sim.artifactBackupState s.paths.artifactBackupState)
        ]
        else []
      )
      ++ (
        if probes
        then [(ro hostBinaries.blackboxExporter containerBinaries.blackboxExporter)]
        else []
      )
      ++ map (d: ro (onMachine name d) d) (credentialDirs s);
    # The NATS passwords the units of this host load, on the machine.
    passwordFiles = let
      sources = credentialSources s;
      at = u:
        if u == null || !(elem u.passwordFile sources)
        then null
        else onMachine name u.passwordFile;
    in {
      system = at (zone.nats.systemUser or null);
      controller = at (zone.nats.users.controller or null);
      gateAgent = at (zone.nats.users.gateAgent or null);
      backup = at (zone.nats.users.backup or null);
    };
    units =
      ["nats.service" "prometheus-node-exporter.service"]
      ++ (
        if service
        then [lib.agentUnit lib.controllerUnit "keepalived.service"]
        else []
      )
      ++ (
        if backs
        then ["bsfg-backup.service"]
        else []
      )
      ++ (
        if artifactBacks
        then ["bsfg-artifact-backup.service"]
        else []
      )
      ++ (
        if probes
        then ["prometheus-blackbox-exporter.service"]
        else []
      );
    # systemd.services.<name>.restartIfChanged of each unit file above
    # (a service's file is `<name>.service` unless its `name` says so).
    restartIfChanged = listToAttrs (map (u: {
        name =
          if match ".*[.](service|timer)" u.name != null
          then u.name
          else "${u.name}.service";
        value = u.restartIfChanged or true;
      })
      (attrValues s.units)
      # nixpkgs' default: mkExporterConf sets no restartIfChanged.
      ++ [
        {
          name = "prometheus-node-exporter.service";
          value = true;
        }
      ]
      ++ (
        if service
        then [
          {
            name = "keepalived-boot-delay.timer";
            value = true;
          }
        ]
        else []
      ));
  };
in {
  inherit containerBinaries keepalivedProgram storeBinaries staging;
  pki = pkiPlan;
  # The same function the files above went through, for the tests.
  inherit containerise;
  # The appliance's settings of each host (store paths), for the tests.
  appliance = mapAttrs (name: _: appliance name) zone.hosts;
  hosts = mapAttrs (name: _: host name) zone.hosts;
}
