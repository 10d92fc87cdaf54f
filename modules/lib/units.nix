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
}: let
  inherit (builtins) concatStringsSep match toJSON;
  inherit (import ./render.nix) unitFile;

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
