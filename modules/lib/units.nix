# The systemd units of one host, as data: what the NixOS modules assign to
# `systemd.services.<name>` (ExecStart, Type, watchdog, dependencies, restart
# policy, credentials, hardening), and what the zone simulator (and anything
# else that runs them outside NixOS) reads: `argv` is ExecStart as a list, and
# `text` a complete unit file (with an [Install] section; nixpkgs writes its
# own file from the same attributes and adds Environment= lines and
# restart-trigger markers of its own).
#
# Two kinds of entry:
#   * own units (`bsfg-controller`, `bsfg-gate-agent`): every attribute;
#   * `nats`, `keepalived`: what the appliance adds to the units nixpkgs'
#     services.nats and services.keepalived define (no `text`).
{
  runs,
  paths,
  binaries,
  certificates, # the zone description's certificate paths (LoadCredential= sources)
  natsSystemUser, # null or { passwordFile; ... }
  natsUsers, # { controller, gateAgent }: { user; passwordFile; passwordHash; }
  agentUser,
  controllerUser,
  artifactsGroup,
  controllerUnit,
  agentUnit,
  backup ? null, # the zone's backup settings ({ schedule; directory; keep; }) or null
  artifactBackup ? null, # the zone's artifactBackup settings (same shape) or null
  probe ? null, # the zone's service probe ({ certificate; privateKey; ... }) or null
  natsClientPort ? 4222,
}: let
  inherit (builtins) concatStringsSep match toJSON;
  inherit (import ./render.nix) section unitFile;

  systemdArg = a:
    if match "[A-Za-z0-9_./:@=,+-]+" a != null
    then a
    else toJSON a;
  execLine = argv: concatStringsSep " " (map systemdArg argv);

  own = u: u // {text = unitFile u;};

  # What both of our daemons give up: no privilege, no kernel or device
  # access, a read-only system, their own /tmp.
  hardening = {
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    RemoveIPC = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = ["@system-service" "~@privileged" "~@resources"];
    UMask = "0027";
  };

  controllerArgv = [binaries.controller "--config" paths.controllerConfig];
  agentArgv = [binaries.gateAgent "--config" paths.agentConfig "run"];
  natsArgv = [binaries.natsServer "-c" paths.natsConfig];

  # Contract section 7: NEVER started by boot or generic auto-start, only by
  # the gate agent once every promotion gate holds: no wantedBy, Restart=no
  # (a crashed controller comes back only through the gates).
  controller = own {
    name = controllerUnit;
    description = "BSFG zone controller (started only by bsfg-gate-agent)";
    wantedBy = [];
    wants = ["network-online.target"];
    after = ["network-online.target" "nats.service"];
    unitConfig = {
      # /artifacts must be mounted, not the bare mount point.
      RequiresMountsFor = [paths.artifacts];
      # The agent decides about retries; never rate-limit its starts.
      StartLimitIntervalSec = 0;
    };
    serviceConfig =
      hardening
      // {
        # READY=1 after binding the VIP and connecting to JetStream; WATCHDOG=1.
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = execLine controllerArgv;
        WatchdogSec = "10s";
        Restart = "no";
        TimeoutStartSec = "30s";
        TimeoutStopSec = "15s";
        KillMode = "mixed";
        User = controllerUser;
        Group = controllerUser;
        SupplementaryGroups = [artifactsGroup];
        # Read by systemd as root from the operator's paths, never copied
        # into the Nix store; the daemon finds them under /run/credentials.
        LoadCredential =
          [
            "cert.pem:${certificates.certificate}"
            "key.pem:${certificates.privateKey}"
            "ca.pem:${certificates.ca}"
            "nats-password:${natsUsers.controller.passwordFile}"
          ]
          ++ (
            if natsSystemUser == null
            then []
            else ["nats-system-password:${natsSystemUser.passwordFile}"]
          );
        # TCP (clients on the VIP, NATS on loopback), AF_UNIX (sd_notify,
        # journald), the artifact directory; nothing else.
        ReadWritePaths = [paths.artifacts];
        RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
        # Only its own user is mapped: /artifacts is owned by it, the
        # credentials are handed to it, nothing else needs an identity.
        PrivateUsers = true;
        DevicePolicy = "closed";
        ProtectProc = "invisible";
        ProcSubset = "pid";
      };
    argv = controllerArgv;
    # NixOS: a `switch` must not restart it behind the agent's back.
    restartIfChanged = false;
  };

  # The only thing that starts the controller. It creates the notify FIFO
  # and the track file before READY=1, so keepalived (ordered after it)
  # always finds them; it pings the watchdog on every evaluation.
  agent = own {
    name = agentUnit;
    description = "BSFG gate agent (promotes and demotes the controller)";
    wantedBy = ["multi-user.target"];
    wants = ["network-online.target"];
    after = ["network-online.target" "nats.service"];
    # An agent that keeps failing must keep being restarted, never into a
    # start limit: without it the host can neither promote nor demote (while
    # it is down keepalived's check fails, so the host gives the VIP away).
    unitConfig.StartLimitIntervalSec = 0;
    serviceConfig =
      hardening
      // {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = execLine agentArgv;
        WatchdogSec = "10s";
        # Backing off 1 s, 2 s, 4 s, then 8 s between restarts of a crashing
        # binary (systemd >= 254; the zone simulator waits the same delays).
        Restart = "always";
        RestartSec = "1s";
        RestartSteps = 3;
        RestartMaxDelaySec = "8s";
        User = agentUser;
        Group = agentUser;
        SupplementaryGroups = [artifactsGroup];
        # Only its own NATS password by LoadCredential= (without it the agent
        # can do nothing; systemd names the missing file in the unit's
        # status). The public certificate it reads where it is installed,
        # and it only looks whether the controller's other credentials exist
        # (gate 5): a missing one must not fail this unit before the agent
        # could say which.
        LoadCredential = ["nats-password:${natsUsers.gateAgent.passwordFile}"];
        # The FIFO keepalived writes and the track file keepalived reads,
        # kept across agent restarts so keepalived's open FIFO stays valid.
        # 0755: the controller (another user) reads the lease sighting here;
        # the FIFO itself is 0600 and the track file is only read by root.
        # Under /run: the appliance's paths.agentRuntime (modules/lib/zone.nix).
        RuntimeDirectory = "bsfg-gate-agent";
        RuntimeDirectoryMode = "0755";
        RuntimeDirectoryPreserve = "yes";
        # "-": the agent must start (and report the failing gate) even when
        # the artifact storage is missing.
        ReadWritePaths = ["-${paths.artifacts}"];
        # AF_NETLINK: the VIP's presence from the kernel; AF_UNIX: D-Bus.
        RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK"];
        # Unlike the controller, no ProtectProc=invisible / ProcSubset=pid:
        # gate 1 looks for keepalived (root's process) in /proc, which they
        # would hide. systemd-analyze security: 1.5 (docs/zone-simulator.md).
      };
    argv = agentArgv;
    restartIfChanged = true;
  };

  # Scheduled snapshots (gamma, zone setting `backup`): a oneshot that
  # snapshots every stream, reads each snapshot back, prunes beyond `keep`
  # and writes the result as metrics (bsfg_backup_*) for the node
  # exporter's textfile collector; the timer starts it. A missed run (host
  # off) runs at the next boot (Persistent=).
  backupMetricsFile = "${paths.backupState}/bsfg-backup.prom";
  backupArgv =
    if backup == null
    then []
    else [
      binaries.bsfgctl
      "backup"
      "--into"
      backup.directory
      "--keep"
      (toString backup.keep)
      "--metrics-file"
      backupMetricsFile
      "--nats-url"
      "nats://127.0.0.1:${toString natsClientPort}"
      "--nats-user"
      natsUsers.backup.user
      "--nats-password-file"
      paths.natsBackupPassword
    ];
  backupService = own {
    name = "bsfg-backup";
    description = "BSFG zone snapshot (bsfgctl backup)";
    wantedBy = [];
    wants = ["nats.service"];
    after = ["nats.service"];
    unitConfig.RequiresMountsFor = [backup.directory];
    serviceConfig =
      hardening
      // {
        Type = "oneshot";
        ExecStart = execLine backupArgv;
        User = "bsfg-backup";
        Group = "bsfg-backup";
        LoadCredential = ["nats-password:${natsUsers.backup.passwordFile}"];
        # /var/lib/bsfg-backup: the metrics file (world-readable, for the
        # node exporter) and the default snapshot directory; each snapshot
        # directory is 0700 (bsfgctl makes it so): it holds every fact.
        StateDirectory = "bsfg-backup";
        StateDirectoryMode = "0755";
        UMask = "0022";
        # The destination: under the state directory (the default) it is
        # writable anyway and bsfgctl creates it; elsewhere it must exist
        # (a mounted backup disk, RequiresMountsFor= above), or the run
        # fails on the read-only file system and says where.
        ReadWritePaths = ["-${backup.directory}"];
        RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
        PrivateUsers = true;
        # A snapshot of a large zone takes minutes; never hours.
        TimeoutStartSec = "2h";
        Nice = 10;
        IOSchedulingClass = "idle";
      };
    argv = backupArgv;
    # Never started by a switch: only by its timer (or an operator).
    restartIfChanged = false;
  };
  backupTimer = snapshotTimer "bsfg-backup" "BSFG zone snapshot schedule" backup.schedule;

  # The timer of a scheduled snapshot: a missed run (host off) runs at the
  # next boot (Persistent=); the random delay keeps hosts from all reading
  # their disks at the same second.
  snapshotTimer = name: description: schedule: let
    timerConfig = {
      OnCalendar = schedule;
      Persistent = true;
      RandomizedDelaySec = "10min";
    };
  in {
    name = "${name}.timer";
    inherit description timerConfig;
    wantedBy = ["timers.target"];
    text =
      section "Unit" {Description = description;}
      + "\n"
      + section "Timer" timerConfig
      + "\n"
      + section "Install" {WantedBy = "timers.target";};
  };

  # Scheduled snapshots of this service host's artifact store (zone setting
  # `artifactBackup`): a oneshot that copies every blob new since the last
  # snapshot (hashed against its name, read back), hard-links the rest,
  # prunes beyond `keep` and writes bsfg_artifact_backup_* for the node
  # exporter's textfile collector. It reads /artifacts (the artifacts
  # group) and writes only the destination and its state directory; no
  # network at all.
  artifactBackupMetricsFile = "${paths.artifactBackupState}/bsfg-artifact-backup.prom";
  artifactBackupArgv =
    if artifactBackup == null
    then []
    else [
      binaries.bsfgctl
      "backup-artifacts"
      "--from"
      paths.artifacts
      "--into"
      artifactBackup.directory
      "--keep"
      (toString artifactBackup.keep)
      "--metrics-file"
      artifactBackupMetricsFile
    ];
  artifactBackupService = own {
    name = "bsfg-artifact-backup";
    description = "BSFG artifact store snapshot (bsfgctl backup-artifacts)";
    wantedBy = [];
    wants = [];
    after = [];
    unitConfig.RequiresMountsFor = [paths.artifacts artifactBackup.directory];
    serviceConfig =
      hardening
      // {
        Type = "oneshot";
        ExecStart = execLine artifactBackupArgv;
        User = "bsfg-artifact-backup";
        Group = "bsfg-artifact-backup";
        # /artifacts is 2770 bsfg-controller:bsfg-artifacts and the blobs
        # 0640: the group reads them; read-only besides.
        SupplementaryGroups = [artifactsGroup];
        ReadOnlyPaths = [paths.artifacts];
        # The metrics file (world-readable, for the node exporter) and the
        # default snapshot directory; each snapshot directory is 0700.
        StateDirectory = "bsfg-artifact-backup";
        StateDirectoryMode = "0755";
        UMask = "0022";
        # Elsewhere than the state directory the destination must exist
        # (RequiresMountsFor= above), or the run fails and says where.
        ReadWritePaths = ["-${artifactBackup.directory}"];
        PrivateNetwork = true;
        RestrictAddressFamilies = ["AF_UNIX"];
        PrivateUsers = true;
        TimeoutStartSec = "2h";
        Nice = 10;
        IOSchedulingClass = "idle";
      };
    argv = artifactBackupArgv;
    # Never started by a switch: only by its timer (or an operator).
    restartIfChanged = false;
  };
  artifactBackupTimer = snapshotTimer "bsfg-artifact-backup" "BSFG artifact store snapshot schedule" artifactBackup.schedule;

  # Added to nixpkgs' nats.service: the listeners bind host addresses, and
  # JetStream data never goes onto the root file system because its mount
  # failed. ExecStart runs the tested nats-server with the rendered file.
  nats = {
    name = "nats.service";
    wants = ["network-online.target"];
    after = ["network-online.target"];
    unitConfig.RequiresMountsFor = [paths.jetstream];
    serviceConfig = {
      ExecStart = execLine natsArgv;
      # The route certificate of this host and the zone CA (cluster.tls).
      LoadCredential = [
        "route-cert.pem:${certificates.natsRouteCertificate}"
        "route-key.pem:${certificates.natsRoutePrivateKey}"
        "ca.pem:${certificates.ca}"
      ];
    };
    argv = natsArgv;
  };

  # Added to nixpkgs' prometheus-blackbox-exporter.service (gamma's service
  # probe, modules/lib/probe.nix): its client certificate, key and the zone
  # CA by LoadCredential=, under the names the rendered configuration reads
  # (nixosPaths.probe); no raw sockets (gRPC and HTTP probes only, where nixpkgs
  # grants CAP_NET_RAW for ping), and the system-call filter and /proc
  # restrictions nixpkgs' exporter units do not set.
  blackboxExporter = {
    name = "prometheus-blackbox-exporter.service";
    serviceConfig = {
      # The names of nixosPaths.probe (/run/credentials/<unit>/<name>).
      LoadCredential = [
        "cert.pem:${probe.certificate}"
        "key.pem:${probe.privateKey}"
        "ca.pem:${certificates.ca}"
      ];
      AmbientCapabilities = [];
      CapabilityBoundingSet = [""];
      # setrlimit (in @resources) allowed again: Go programs raise their
      # soft RLIMIT_NOFILE to the hard limit at start, and systemd's
      # soft 1024 < hard makes the exporter do it; without it seccomp
      # kills it at once (SIGSYS, seen in the simulator's systemd mode).
      SystemCallFilter = ["@system-service" "~@privileged" "~@resources" "setrlimit"];
      ProtectProc = "invisible";
      ProcSubset = "pid";
    };
  };

  # Added to nixpkgs' keepalived.service: the notify FIFO and the track file
  # live in the agent's runtime directory.
  keepalived = {
    name = "keepalived.service";
    wants = [agentUnit];
    after = [agentUnit];
  };
in
  {inherit nats;}
  // (
    if runs.gateAgent
    then {
      bsfg-controller = controller;
      bsfg-gate-agent = agent;
      inherit keepalived;
    }
    else {}
  )
  // (
    if runs.backup or false
    then {
      bsfg-backup = backupService;
      bsfg-backup-timer = backupTimer;
    }
    else {}
  )
  // (
    if runs.artifactBackup or false
    then {
      bsfg-artifact-backup = artifactBackupService;
      bsfg-artifact-backup-timer = artifactBackupTimer;
    }
    else {}
  )
  // (
    if runs.probe or false
    then {prometheus-blackbox-exporter = blackboxExporter;}
    else {}
  )
