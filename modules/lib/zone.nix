# The Triad-HA zone, computed. Pure Nix (builtins only, no nixpkgs) so that
#   * the NixOS modules (modules/services/*.nix) and
#   * the zone simulator (bsfg-zonesim, through modules/lib/simulator.nix)
# derive every per-host setting from ONE zone description with the SAME code.
# Only the filesystem paths and the controller supervisor differ between the
# two; they are arguments (see `nixosPaths` and `simulatorPaths`).
#
# Entry points:
#   normalise zoneDescription          -> validated zone with defaults filled in
#   hostSettings { zone; host; paths; supervisor; binaries; requireMountPoint; }
#                                      -> everything one host runs (see README.md)
#   nixosPaths / simulatorPaths        -> the `paths` argument for each world
#
# Every invalid description throws one line starting with "zone: " that names
# the offending setting. tests/lib/ exercises each of them.
let
  net = import ./net.nix;
  names = import ./names.nix;
  duration = import ./duration.nix;
  disksLib = import ./disks.nix;
  render = import ./render.nix;
  natsAccess = import ./nats.nix;
  firewall = import ./firewall.nix;
  mkUnits = import ./units.nix;
  site = import ./network.nix;
  probeLib = import ./probe.nix;

  inherit
    (builtins)
    attrNames
    attrValues
    concatStringsSep
    elem
    filter
    head
    isAttrs
    isInt
    isString
    length
    listToAttrs
    mapAttrs
    toJSON
    ;

  roles = ["alpha" "beta" "gamma"];
  serviceRoles = ["alpha" "beta"];

  # Ports of the appliance. Overridable per zone (`ports`), e.g. for a lab
  # that runs two zones on one segment.
  defaultPorts = {
    natsClient = 4222;
    natsCluster = 6222;
    natsMonitor = 8222;
    controller = 9443;
    controllerManagement = 9464;
    agentManagement = 9465;
    # gamma's service probe (blackbox exporter), on its management address.
    probe = 9115;
  };

  # The name keepalived and systemd know the pieces by. Fixed, not options:
  # the gate agent, the polkit rule and the VM tests refer to them.
  controllerUnit = "bsfg-controller.service";
  agentUnit = "bsfg-gate-agent.service";
  controllerUser = "bsfg-controller";
  agentUser = "bsfg-gate-agent";
  artifactsGroup = "bsfg-artifacts";
  # The systemd verbs the gate agent may use on the controller unit (polkit):
  # `kill` (SIGKILL after controller.stop_timeout) and `reset-failed` are what
  # its systemd supervisor uses besides start and stop
  # (crates/bsfg-gate-agent/src/supervisor/systemd.rs).
  controllerVerbs = ["start" "stop" "restart" "kill" "reset-failed"];
  checkScriptName = "bsfg_jetstream_ok";
  trackFileName = "bsfg_gate";

  fail = msg: throw "zone: ${msg}";

  # Optional attribute with a default, without nixpkgs' attrByPath.
  get = attrs: name: default:
    if attrs ? ${name}
    then attrs.${name}
    else default;

  duplicates = list: let
    go = seen: dups: rest:
      if rest == []
      then dups
      else let
        x = head rest;
        tail = builtins.tail rest;
      in
        if elem x seen
        then
          go seen (
            if elem x dups
            then dups
            else dups ++ [x]
          )
          tail
        else go (seen ++ [x]) dups tail;
  in
    go [] [] list;

  checkAbsolutePath = what: p:
    if builtins.isPath p
    then fail "${what} is a Nix path (${toString p}); write it as a string so the file is read on the host at run time and never copied into the world-readable Nix store"
    else if !(isString p) || builtins.match "/.*" p == null
    then fail "${what} = ${toJSON p} must be an absolute path string"
    else p;

  # A secret (private key, password) must stay out of the Nix store, which
  # every local user can read and which is copied to every machine the
  # closure goes to. Strings naming a store path are refused like Nix paths.
  isStorePath = p: isString p && builtins.substring 0 (builtins.stringLength builtins.storeDir + 1) p == "${builtins.storeDir}/";
  secretPathError = what: p: "${what} = ${toJSON p} is in the Nix store, which every user of the host can read; install the secret on the host (e.g. /var/lib/bsfg/secrets/, or the path sops-nix or agenix decrypts it to: /run/secrets/<name>, /run/agenix/<name>) and name that path";
  checkSecretPath = what: p:
    if isStorePath p
    then fail (secretPathError what p)
    else checkAbsolutePath what p;

  # Every secret path of a zone description (not normalised, so the
  # modules' assertions can name each one before anything else fails):
  # [ { option; path; } ], the paths as written.
  secretPaths = desc: let
    c = get desc "certificates" {};
    n = get desc "nats" {};
    users = get n "users" {};
    pw = where: u:
      if isAttrs u && u ? passwordFile
      then [
        {
          option = "${where}.passwordFile";
          path = u.passwordFile;
        }
      ]
      else [];
    key = name:
      if isAttrs c && c ? ${name}
      then [
        {
          option = "certificates.${name}";
          path = c.${name};
        }
      ]
      else [];
  in
    key "privateKey"
    ++ key "natsRoutePrivateKey"
    ++ (
      let
        p = get desc "probe" null;
      in
        if isAttrs p && p ? privateKey
        then [
          {
            option = "probe.privateKey";
            path = p.privateKey;
          }
        ]
        else []
    )
    ++ pw "nats.systemUser" (get n "systemUser" null)
    ++ (
      if isAttrs users
      then builtins.concatLists (map (u: pw "nats.users.${u}" users.${u}) (attrNames users))
      else []
    );

  checkIdentities = what: ids:
    if !(builtins.isList ids)
    then fail "${what} must be a list of certificate identities"
    else map (names.checkIdentity what) ids;

  # ---------------------------------------------------------------- hosts

  normaliseHost = name: h: let
    where = "hosts.${name}";
    role = get h "role" null;
    address = get h "address" null;
    prefixLength = get h "prefixLength" 24;
    interface = get h "interface" null;
    managementAddress = get h "managementAddress" address;
    # The interface of the management network when it is its own segment.
    managementInterface = get h "managementInterface" interface;
    # The disks the installer partitions (modules/lib/disks.nix); null: by hand.
    disks = disksLib.normalise {
      where = "${where}.disks";
      inherit role;
      disks = get h "disks" null;
    };
  in
    if !(isAttrs h)
    then fail "${where} must be an attribute set"
    else if !(elem role roles)
    then fail "${where}.role = ${toJSON role} is not a role: use one of \"alpha\", \"beta\", \"gamma\""
    else if !(net.isIPv4 address)
    then fail "${where}.address = ${toJSON address} is not an IPv4 address"
    else if !(net.validPrefix prefixLength)
    then fail "${where}.prefixLength = ${toJSON prefixLength} must be an integer between 8 and 32"
    else if net.isNetworkOrBroadcast address prefixLength
    then fail "${where}.address ${address} is the network or broadcast address of its /${toString prefixLength}"
    else if !(isString interface) || interface == ""
    then fail "${where}.interface must name the host's zone network interface, e.g. \"eno1\""
    else if !(net.isIPv4 managementAddress)
    then fail "${where}.managementAddress = ${toJSON managementAddress} is not an IPv4 address"
    else if !(isString managementInterface) || managementInterface == ""
    then fail "${where}.managementInterface must name the host's management network interface, e.g. \"eno2\""
    else {
      name = names.checkToken "host name" name;
      inherit role address prefixLength interface managementAddress managementInterface disks;
    };

  checkRoles = hosts: let
    byRole = role: filter (h: h.role == role) (attrValues hosts);
    problems = map (role: let
      holders = byRole role;
    in
      if length holders == 1
      then null
      else if holders == []
      then "no host has role \"${role}\""
      else "role \"${role}\" is given to several hosts (${concatStringsSep ", " (map (h: h.name) holders)}); a Triad-HA zone has exactly one alpha, one beta and one gamma")
    roles;
    firstProblem = filter (p: p != null) problems;
  in
    if length (attrNames hosts) != 3
    then fail "a Triad-HA zone has exactly three hosts (alpha, beta, gamma); found ${toString (length (attrNames hosts))}: ${concatStringsSep ", " (attrNames hosts)}"
    else if firstProblem != []
    then fail (head firstProblem)
    else hosts;

  checkAddresses = hosts: let
    all' = attrValues hosts;
    dupAddr = duplicates (map (h: h.address) all');
    dupMgmt = duplicates (map (h: h.managementAddress) all');
  in
    if dupAddr != []
    then fail "duplicate host address ${head dupAddr} (hosts ${concatStringsSep ", " (map (h: h.name) (filter (h: h.address == head dupAddr) all'))}); every host needs its own address"
    else if dupMgmt != []
    then fail "duplicate management address ${head dupMgmt}; every host needs its own"
    else hosts;

  # ---------------------------------------------------------------- the zone

  normalise = desc: let
    zoneId = names.checkToken "zone id (`zone`)" (get desc "zone" null);

    hosts0 = get desc "hosts" null;
    hosts =
      if !(isAttrs hosts0)
      then fail "`hosts` must be an attribute set of the three hosts, keyed by host name"
      else checkAddresses (checkRoles (mapAttrs normaliseHost hosts0));
    hostByRole = role: head (filter (h: h.role == role) (attrValues hosts));
    alpha = hostByRole "alpha";
    beta = hostByRole "beta";

    tier = let
      t = get desc "tier" "standard";
    in
      if elem t ["standard" "critical"]
      then t
      else fail "tier = ${toJSON t} is not a durability tier: use \"standard\" or \"critical\" (contract section 6)";

    managementNetwork = let
      m = get desc "managementNetwork" null;
    in
      if net.parseCidr m == null
      then fail "managementNetwork = ${toJSON m} must be a CIDR such as \"10.30.0.0/24\""
      else m;

    # Who may reach SSH on the hosts (modules/firewall.nix turns
    # services.openssh.openFirewall off and admits only these sources).
    # Default: the management network alone.
    ssh = let
      s = get desc "ssh" {};
      allowFrom = get s "allowFrom" [managementNetwork];
      example = "ssh.allowFrom = [ \"10.30.0.0/24\" ]";
    in
      if !(isAttrs s)
      then fail "`ssh` must be an attribute set, e.g. { allowFrom = [ \"10.30.0.0/24\" ]; }"
      else if filter (k: k != "allowFrom") (attrNames s) != []
      then fail "ssh: unknown setting(s) ${concatStringsSep ", " (filter (k: k != "allowFrom") (attrNames s))}; known: allowFrom"
      else if !(builtins.isList allowFrom) || allowFrom == []
      then fail "ssh.allowFrom must list the networks that may reach SSH (CIDRs, e.g. ${example}; [ \"0.0.0.0/0\" ] for every network); to close SSH, disable services.openssh"
      else if builtins.any (c: net.parseCidr c == null) allowFrom
      then fail "ssh.allowFrom: ${toJSON (builtins.head (filter (c: net.parseCidr c == null) allowFrom))} is not a CIDR such as \"10.30.0.0/24\""
      else {inherit allowFrom;};

    ports = defaultPorts // get desc "ports" {};

    vip = let
      v = get desc "vip" null;
      address = get v "address" null;
      prefixLength = get v "prefixLength" alpha.prefixLength;
      interface = get v "interface" null;
      hostAddrs = map (h: h.address) (attrValues hosts);
    in
      if !(isAttrs v)
      then fail "`vip` must be set: { address = \"...\"; prefixLength = 24; }"
      else if !(net.isIPv4 address)
      then fail "vip.address = ${toJSON address} is not an IPv4 address"
      else if !(net.validPrefix prefixLength)
      then fail "vip.prefixLength = ${toJSON prefixLength} must be an integer between 8 and 32"
      else if elem address hostAddrs
      then fail "vip.address ${address} equals a host address; the VIP must be an address of its own that moves between alpha and beta"
      else if !(net.sameSubnet alpha.address beta.address alpha.prefixLength)
      then fail "alpha (${alpha.address}/${toString alpha.prefixLength}) and beta (${beta.address}) are not on one subnet; VRRP and the VIP need a shared segment between the two service hosts"
      else if !(net.sameSubnet address alpha.address alpha.prefixLength) || !(net.sameSubnet address beta.address beta.prefixLength)
      then fail "vip.address ${address} is outside the service hosts' subnet (alpha ${alpha.address}/${toString alpha.prefixLength}, beta ${beta.address}/${toString beta.prefixLength})"
      else if net.isNetworkOrBroadcast address prefixLength
      then fail "vip.address ${address} is the network or broadcast address of its subnet"
      else if interface != null && (!(isString interface) || interface == "")
      then fail "vip.interface must be null (use each host's interface) or an interface name"
      else {inherit address prefixLength interface;};

    vrrp = let
      v = get desc "vrrp" {};
      routerId = get v "routerId" null;
      version = get v "version" 3;
      advertIntervalMs = get v "advertIntervalMs" (
        if version == 3
        then 200
        else 1000
      );
      priorities =
        {
          alpha = 150;
          beta = 100;
        }
        // get v "priorities" {};
      okPriority = p: isInt p && p >= 1 && p <= 254;
    in
      if !(isInt routerId) || routerId < 1 || routerId > 255
      then fail "vrrp.routerId = ${toJSON routerId} must be an integer in 1..255, unique among the VRRP routers on the segment"
      else if !(elem version [2 3])
      then fail "vrrp.version = ${toJSON version} must be 2 or 3"
      else if !(isInt advertIntervalMs) || advertIntervalMs < 10 || advertIntervalMs > 40950
      then fail "vrrp.advertIntervalMs = ${toJSON advertIntervalMs} must be an integer between 10 and 40950"
      else if version == 3 && advertIntervalMs - (advertIntervalMs / 10) * 10 != 0
      then fail "vrrp.advertIntervalMs = ${toString advertIntervalMs}: VRRPv3 advertises in centiseconds, use a multiple of 10 ms"
      else if version == 2 && advertIntervalMs - (advertIntervalMs / 1000) * 1000 != 0
      then fail "vrrp.advertIntervalMs = ${toString advertIntervalMs}: VRRPv2 advertises in whole seconds; use a multiple of 1000 or set vrrp.version = 3 for sub-second adverts"
      else if !(okPriority priorities.alpha) || !(okPriority priorities.beta)
      then fail "vrrp.priorities must be integers in 1..254 (255 is reserved for an address owner); got alpha = ${toJSON priorities.alpha}, beta = ${toJSON priorities.beta}"
      else if priorities.alpha == priorities.beta
      then fail "vrrp.priorities tie (alpha = beta = ${toString priorities.alpha}); alpha must have the higher priority so that the election at start-up is deterministic"
      else if priorities.alpha < priorities.beta
      then fail "vrrp.priorities: alpha (${toString priorities.alpha}) must be higher than beta (${toString priorities.beta}); alpha is the primary service host"
      else {inherit routerId version advertIntervalMs priorities;};

    certificates = let
      c = get desc "certificates" null;
    in
      if !(isAttrs c)
      then fail "`certificates` must be set: { certificate = \"/path/cert.pem\"; privateKey = \"/path/key.pem\"; ca = \"/path/ca.pem\"; }"
      else {
        certificate = checkAbsolutePath "certificates.certificate" (get c "certificate" null);
        privateKey = checkSecretPath "certificates.privateKey" (get c "privateKey" null);
        ca = checkAbsolutePath "certificates.ca" (get c "ca" null);
        # Every host's own certificate for the JetStream cluster routes,
        # issued by the zone CA (`ca`) with the host's address as IP SAN.
        natsRouteCertificate = checkAbsolutePath "certificates.natsRouteCertificate" (get c "natsRouteCertificate" null);
        natsRoutePrivateKey = checkSecretPath "certificates.natsRoutePrivateKey" (get c "natsRoutePrivateKey" null);
        # The CN and DNS SAN of the controller certificate: what peer
        # zones name as this zone's `peers.<name>.identity`.
        controllerIdentity = names.checkIdentity "certificates.controllerIdentity" (get c "controllerIdentity" "${zoneId}-bsfg");
      };

    # Site network and time (modules/lib/network.nix).
    network = site.normaliseNetwork {inherit desc hosts managementNetwork;};
    time = site.normaliseTime desc;
    vrrpWithSegment = vrrp // {segment = site.normaliseVrrpSegment {inherit desc hosts vip;};};

    certificatePolicy = let
      c = get desc "certificatePolicy" {};
      minValidity = get c "minValidity" "30d";
      policy = get c "policy" "deny";
    in
      if !(elem policy ["deny" "warn"])
      then fail "certificatePolicy.policy = ${toJSON policy} must be \"deny\" or \"warn\""
      else {
        minValidity = builtins.seq (duration.toMs "certificatePolicy.minValidity" minValidity) minValidity;
        inherit policy;
      };

    lease = let
      l = get desc "lease" {};
      # The TTL must stay below the VIP failover time, or the standby's agent
      # waits out the lease after the VIP has moved: sub-second
      # adverts move the VIP in ~0.65 s, so they get a 500 ms lease; 1 s
      # adverts (VIP move ~2.8 s) keep 1 s. Renewal and margin default to
      # ttl / 5 and ttl / 4, the ratios of 1 s / 200 ms / 250 ms: the margin
      # then covers the same clock-rate drift, margin / (2 * ttl) = 12.5 %
      # (crates/bsfg-core/src/lease.rs). Settings the description gives win.
      ttlDefault =
        if vrrp.advertIntervalMs < 1000
        then "500ms"
        else "1s";
      ttl0 = get l "ttl" ttlDefault;
      ttlMs0 = duration.toMs "lease.ttl" ttl0;
      ms = n: "${toString n}ms";
      r = {
        bucket = get l "bucket" "bsfg_lease";
        ttl = ttl0;
        renewInterval = get l "renewInterval" (ms (ttlMs0 / 5));
        safetyMargin = get l "safetyMargin" (ms (ttlMs0 / 4));
      };
      ttl = duration.toMs "lease.ttl" r.ttl;
      renew = duration.toMs "lease.renewInterval" r.renewInterval;
      margin = duration.toMs "lease.safetyMargin" r.safetyMargin;
    in
      if builtins.match "[A-Za-z0-9_-]+" r.bucket == null
      then fail "lease.bucket = ${toJSON r.bucket}: use letters, digits, '_' and '-' only"
      else if margin >= ttl
      then fail "lease.safetyMargin (${r.safetyMargin}) must be shorter than lease.ttl (${r.ttl})"
      else if renew * 2 > ttl - margin
      then fail "lease.renewInterval (${r.renewInterval}) leaves fewer than two renewals within ttl - safetyMargin (${toString (ttl - margin)}ms)"
      else r;

    classes = let
      c = get desc "classes" {};
    in
      if !(isAttrs c) || c == {}
      then fail "`classes` must declare at least one stream class, e.g. { operational = { max_age = \"7d\"; max_bytes = \"1 GiB\"; append = [ \"mes-producer\" ]; }; }"
      else
        mapAttrs (name: cls:
          builtins.seq (names.checkToken "stream class" name) (
            cls
            // {append = checkIdentities "classes.${name}.append" (get cls "append" []);}
          ))
        c;

    peers = mapAttrs (zone: p: let
      where = "peers.${zone}";
    in
      if zone == zoneId
      then fail "${where}: a zone cannot be its own peer"
      else if !(p ? identity)
      then fail "${where}.identity must name the certificate identity the peer's controller presents"
      else if (p ? endpoint) != (p ? consumer)
      then fail "${where}: endpoint and consumer go together (both or neither)"
      else
        builtins.seq (names.checkToken "peer zone" zone) (
          p // {identity = names.checkIdentity "${where}.identity" p.identity;}
        )) (get desc "peers" {});

    consumers = mapAttrs (name: c: let
      where = "consumers.${name}";
      m = builtins.match "(store|forward):([a-z0-9][a-z0-9_-]*)(/.*)?" (get c "source" "");
      kind = builtins.elemAt m 0;
      target = builtins.elemAt m 1;
    in
      if m == null
      then fail "${where}.source = ${toJSON (get c "source" null)} must be \"store:<class>[/<kind>]\" or \"forward:<peer>[/<kind>]\""
      else if kind == "store" && !(classes ? ${target})
      then fail "${where}.source names unknown stream class \"${target}\""
      else if kind == "forward" && !(peers ? ${target})
      then fail "${where}.source names unknown peer \"${target}\""
      else
        builtins.seq (names.checkToken "consumer" name) (
          c // {allowed = checkIdentities "${where}.allowed" (get c "allowed" []);}
        )) (get desc "consumers" {});

    buckets = mapAttrs (name: b:
      builtins.seq (names.checkToken "bucket" name) (
        b
        // {
          read = checkIdentities "buckets.${name}.read" (get b "read" []);
          write = checkIdentities "buckets.${name}.write" (get b "write" []);
        }
      )) (get desc "buckets" {});

    logging =
      {
        format = "json";
        filter = "info";
      }
      // get desc "logging" {};

    gateAgent = let
      g =
        {
          evaluateInterval = "250ms";
          readyTimeout = "15s";
          stopTimeout = "10s";
        }
        // get desc "gateAgent" {};
    in
      builtins.seq (duration.toMs "gateAgent.evaluateInterval" g.evaluateInterval)
      (builtins.seq (duration.toMs "gateAgent.readyTimeout" g.readyTimeout)
        (builtins.seq (duration.toMs "gateAgent.stopTimeout" g.stopTimeout) g));

    # The NATS system account's user ($SYS), for what only it may do: the
    # active controller moves the JetStream meta leader off its own host
    # ($JS.API.META.LEADER.STEPDOWN), so a crash of the active host never
    # waits for a meta election (gate 3). Absent or null: no accounts are
    # configured and the meta leader stays where JetStream puts it.
    nats = let
      n = get desc "nats" {};
      su = get n "systemUser" null;
      unknownNats = filter (k: !(elem k ["systemUser" "users"])) (attrNames n);
      example = "{ passwordFile = \"/var/lib/bsfg/secrets/<name>\"; passwordHash = \"$2b$11$...\"; }";
      # A NATS user whose password reaches the daemon by path and whose
      # bcrypt hash goes into nats-server's (world-readable) configuration.
      checkUser = where: defaultUser: u: let
        hash = get u "passwordHash" null;
      in
        if !(isAttrs u)
        then fail "${where} must be ${example}"
        else if !(isString hash) || builtins.match "[$]2[abxy][$][0-9][0-9][$][./A-Za-z0-9]{53}" hash == null
        then fail "${where}.passwordHash must be the bcrypt hash (\"$2b$11$\" and 53 more characters, e.g. from `mkpasswd -m bcrypt`) of the password in ${where}.passwordFile; nats-server's configuration is in the world-readable Nix store, so it holds the hash, never the password"
        else {
          user = names.checkToken "${where}.user" (get u "user" defaultUser);
          passwordFile = checkSecretPath "${where}.passwordFile" (get u "passwordFile" null);
          passwordHash = hash;
        };
      users = get n "users" null;
      unknownUsers = filter (k: !(elem k ["controller" "gateAgent" "backup"])) (attrNames users);
    in
      if !(isAttrs n)
      then fail "`nats` must be an attribute set, e.g. { users = { controller = ${example}; gateAgent = ${example}; }; systemUser = ${example}; }"
      else if unknownNats != []
      then fail "unknown setting(s) nats.${concatStringsSep ", nats." unknownNats}; known: nats.systemUser, nats.users"
      else if !(isAttrs users)
      then fail "nats.users must be set: { controller = ${example}; gateAgent = ${example}; } (one NATS user per daemon, each with only the subjects it needs; no client connects without a password)"
      else if unknownUsers != []
      then fail "unknown setting(s) nats.users.${concatStringsSep ", nats.users." unknownUsers}; known: nats.users.controller, nats.users.gateAgent, nats.users.backup"
      else {
        systemUser =
          if su == null
          then null
          else checkUser "nats.systemUser" "bsfg-system" su;
        users = {
          controller = checkUser "nats.users.controller" "bsfg-controller" (get users "controller" null);
          gateAgent = checkUser "nats.users.gateAgent" "bsfg-gate-agent" (get users "gateAgent" null);
          # Optional: the scheduled snapshots (backup.*) and `bsfgctl
          # backup`/`restore` connect as this user; null: no backup user.
          backup = let
            b = get users "backup" null;
          in
            if b == null
            then null
            else checkUser "nats.users.backup" "bsfg-backup" b;
        };
      };

    # Scheduled snapshots, one shape for both kinds: schedule (systemd
    # OnCalendar), directory (where the snapshots go: an existing directory,
    # e.g. a mounted backup disk; the default is the unit's own state
    # directory), keep (how many snapshots stay). Absent or null: none.
    snapshotSchedule = name: defaultDirectory: let
      b = get desc name null;
      unknownB = filter (k: !(elem k ["schedule" "directory" "keep"])) (attrNames b);
      r = {
        schedule = get b "schedule" "daily";
        directory = get b "directory" defaultDirectory;
        keep = get b "keep" 7;
      };
    in
      if b == null
      then null
      else if !(isAttrs b)
      then fail "${name} must be an attribute set, e.g. { schedule = \"daily\"; directory = \"${defaultDirectory}\"; keep = 7; }"
      else if unknownB != []
      then fail "unknown setting(s) ${name}.${concatStringsSep ", ${name}." unknownB}; known: ${name}.schedule, ${name}.directory, ${name}.keep"
      else if !(isString r.schedule) || r.schedule == ""
      then fail "${name}.schedule = ${toJSON r.schedule}: a systemd calendar expression such as \"daily\" or \"*-*-* 02:30:00\""
      else if !(isInt r.keep) || r.keep < 1
      then fail "${name}.keep = ${toJSON r.keep}: keep at least 1 snapshot"
      else r // {directory = checkAbsolutePath "${name}.directory" r.directory;};

    # Every JetStream stream, snapshotted on gamma by `bsfgctl backup` as
    # nats.users.backup.
    backup = let
      r = snapshotSchedule "backup" "/var/lib/bsfg-backup/snapshots";
    in
      if r != null && nats.users.backup == null
      then fail "backup is set but nats.users.backup is not: the snapshots connect as that NATS user (nats.users.backup = { passwordFile = ...; passwordHash = ...; })"
      else r;

    # The artifact store (/artifacts) of alpha and beta, each snapshotted
    # on its own host by `bsfgctl backup-artifacts` (no NATS: the artifact
    # index is in the JetStream snapshots). The directory must not be
    # under /artifacts: a snapshot there dies with the disk it protects.
    artifactBackup = let
      r = snapshotSchedule "artifactBackup" "/var/lib/bsfg-artifact-backup/snapshots";
      under = d: p: d == p || builtins.substring 0 (builtins.stringLength p + 1) d == "${p}/";
    in
      if r != null && under r.directory "/artifacts"
      then fail "artifactBackup.directory = ${toJSON r.directory} is inside /artifacts: the snapshots must be on another disk than the store they protect (e.g. /var/lib/bsfg-artifact-backup/snapshots or a mounted backup disk)"
      else r;

    # The service probe on gamma (modules/lib/probe.nix): gRPC and Connect
    # health on the VIP with a client certificate of its own, exported for
    # Prometheus. Its identity may call the health service only: it must
    # be in no ACL. Absent or null: no probe.
    probe = let
      p = get desc "probe" null;
      unknownP = filter (k: !(elem k ["identity" "certificate" "privateKey" "timeout"])) (attrNames p);
      identity = names.checkIdentity "probe.identity" (get p "identity" "${zoneId}-probe");
      acls =
        builtins.concatMap (c: c.append) (attrValues classes)
        ++ builtins.concatMap (c: c.allowed) (attrValues consumers)
        ++ builtins.concatMap (b: b.read ++ b.write) (attrValues buckets);
      timeoutMs = duration.toMs "probe.timeout" (get p "timeout" "2s");
    in
      if p == null
      then null
      else if !(isAttrs p)
      then fail "probe must be an attribute set, e.g. { certificate = \"/var/lib/bsfg/tls/probe.pem\"; privateKey = \"/var/lib/bsfg/tls/probe.key\"; }"
      else if unknownP != []
      then fail "unknown setting(s) probe.${concatStringsSep ", probe." unknownP}; known: probe.identity, probe.certificate, probe.privateKey, probe.timeout"
      else if elem identity acls
      then fail "probe.identity = ${toJSON identity} is named in an ACL (classes.*.append, consumers.*.allowed, buckets.*): the probe may call the health service only; give it an identity of its own"
      else if identity == certificates.controllerIdentity
      then fail "probe.identity = ${toJSON identity} is the controller's identity (certificates.controllerIdentity); give the probe an identity of its own"
      else if timeoutMs < 100 || timeoutMs > 60000
      then fail "probe.timeout = ${toJSON (get p "timeout" null)}: between 100ms and 60s (Prometheus' scrape_timeout must exceed it)"
      else {
        inherit identity timeoutMs;
        certificate = checkAbsolutePath "probe.certificate" (get p "certificate" null);
        privateKey = checkSecretPath "probe.privateKey" (get p "privateKey" null);
      };

    known = [
      "zone"
      "tier"
      "hosts"
      "managementNetwork"
      "vip"
      "vrrp"
      "ports"
      "certificates"
      "certificatePolicy"
      "lease"
      "classes"
      "consumers"
      "buckets"
      "peers"
      "store"
      "limits"
      "logging"
      "gateAgent"
      "timeServers"
      "network"
      "time"
      "nats"
      "backup"
      "artifactBackup"
      "probe"
      "ssh"
    ];
    unknown = filter (k: !(elem k known)) (attrNames desc);
  in
    if !(isAttrs desc)
    then fail "the zone description must be an attribute set"
    else if unknown != []
    then fail "unknown setting(s) ${concatStringsSep ", " unknown}; known: ${concatStringsSep ", " known}"
    else
      # deepSeq: validate every section now, including those (certificates,
      # managementNetwork) that only some consumers of the result read, so an
      # error never depends on which output someone happens to evaluate.
      builtins.deepSeq [hosts tier managementNetwork ssh vip vrrpWithSegment certificates certificatePolicy lease classes consumers buckets peers gateAgent nats backup artifactBackup probe network time] {
        zone = zoneId;
        inherit tier hosts managementNetwork ssh ports vip certificates certificatePolicy lease classes consumers buckets peers logging gateAgent nats backup artifactBackup probe network time;
        vrrp = vrrpWithSegment;
        store = get desc "store" {};
        limits = get desc "limits" {};
        # Host names by role, for consumers that think in roles.
        byRole = listToAttrs (map (role: {
            name = role;
            value = (hostByRole role).name;
          })
          roles);
      };

  # ---------------------------------------------------------------- paths

  # Where things live on a real appliance (the seeds' canonical mounts).
  nixosPaths = {
    jetstream = "/data/jetstream";
    artifacts = "/artifacts";
    opt = "/opt/bsfg";
    controllerConfig = "/etc/bsfg/controller.toml";
    agentConfig = "/etc/bsfg/gate-agent.toml";
    natsConfig = "/etc/bsfg/nats.json";
    # systemd LoadCredential= puts the files here for the unit only.
    tls = {
      certificate = "/run/credentials/bsfg-controller.service/cert.pem";
      privateKey = "/run/credentials/bsfg-controller.service/key.pem";
      ca = "/run/credentials/bsfg-controller.service/ca.pem";
    };
    agentRuntime = "/run/bsfg-gate-agent";
    # The NATS system user's password (nats.systemUser), LoadCredential= too.
    natsSystemPassword = "/run/credentials/bsfg-controller.service/nats-system-password";
    # Each daemon's own NATS password (nats.users), LoadCredential=.
    natsControllerPassword = "/run/credentials/bsfg-controller.service/nats-password";
    natsAgentPassword = "/run/credentials/bsfg-gate-agent.service/nats-password";
    # The backup user's password (nats.users.backup), LoadCredential= of
    # bsfg-backup.service; its state directory holds the metrics file the
    # node exporter's textfile collector reads.
    natsBackupPassword = "/run/credentials/bsfg-backup.service/nats-password";
    backupState = "/var/lib/bsfg-backup";
    # bsfg-artifact-backup.service's state directory (alpha, beta): its
    # metrics file, and the default snapshot directory.
    artifactBackupState = "/var/lib/bsfg-artifact-backup";
    # nats-server's route certificate, key and the zone CA, LoadCredential=.
    # The service probe's client certificate, key and the zone CA (gamma's
    # blackbox exporter, LoadCredential=).
    probe = {
      certificate = "/run/credentials/prometheus-blackbox-exporter.service/cert.pem";
      privateKey = "/run/credentials/prometheus-blackbox-exporter.service/key.pem";
      ca = "/run/credentials/prometheus-blackbox-exporter.service/ca.pem";
    };
    natsRoute = {
      certificate = "/run/credentials/nats.service/route-cert.pem";
      privateKey = "/run/credentials/nats.service/route-key.pem";
      ca = "/run/credentials/nats.service/ca.pem";
    };
  };

  # Where the zone simulator puts each host's state: everything under
  # <runDir>/<host>/, certificates included (the simulator writes them).
  simulatorPaths = runDir: host: let
    base = "${runDir}/${host}";
  in {
    jetstream = "${base}/jetstream";
    artifacts = "${base}/artifacts";
    opt = "${base}/opt";
    controllerConfig = "${base}/controller.toml";
    agentConfig = "${base}/gate-agent.toml";
    natsConfig = "${base}/nats.json";
    tls = {
      certificate = "${base}/credentials/cert.pem";
      privateKey = "${base}/credentials/key.pem";
      ca = "${base}/credentials/ca.pem";
    };
    agentRuntime = "${base}/run";
    natsSystemPassword = "${base}/credentials/nats-system-password";
    natsControllerPassword = "${base}/credentials/nats-controller-password";
    natsAgentPassword = "${base}/credentials/nats-agent-password";
    natsBackupPassword = "${base}/credentials/nats-backup-password";
    backupState = "${base}/backup";
    artifactBackupState = "${base}/artifact-backup";
    probe = {
      certificate = "${base}/credentials/probe-cert.pem";
      privateKey = "${base}/credentials/probe-key.pem";
      ca = "${base}/credentials/ca.pem";
    };
    natsRoute = {
      certificate = "${base}/credentials/nats-route-cert.pem";
      privateKey = "${base}/credentials/nats-route-key.pem";
      ca = "${base}/credentials/ca.pem";
    };
  };

  defaultBinaries = {
    controller = "bsfg-controller";
    gateAgent = "bsfg-gate-agent";
    natsServer = "nats-server";
    bsfgctl = "bsfgctl";
    # The gate agent asks chronyd (time_sync) with it.
    chronyc = "chronyc";
  };

  # ---------------------------------------------------------------- one host

  hostSettings = {
    zone, # the result of `normalise`
    host, # host name (a key of zone.hosts)
    paths, # nixosPaths or simulatorPaths runDir host
    supervisor ? "systemd", # how the gate agent runs the controller
    binaries ? defaultBinaries, # argv[0] of the controller, the agent and nats-server
    requireMountPoint ? true, # artifacts gate: /artifacts must be a mount point
  }: let
    bins = defaultBinaries // binaries;
    h =
      if zone.hosts ? ${host}
      then zone.hosts.${host}
      else fail "host ${toJSON host} is not in the zone (hosts: ${concatStringsSep ", " (attrNames zone.hosts)})";
    isService = elem h.role serviceRoles;
    probe = probeLib.host {
      inherit zone paths;
      settings = {inherit (h) name role managementAddress;};
    };
    others = filter (o: o.name != host) (attrValues zone.hosts);
    peerServiceHost = head (filter (o: elem o.role serviceRoles) others);
    seg = zone.vrrp.segment;
    inherit (zone) ports;
    mgmt = port: "${h.managementAddress}:${toString port}";

    nats = {
      server_name = host;
      # Client port: localhost only (seed "Canonical Bindings").
      host = "127.0.0.1";
      port = ports.natsClient;
      # Monitoring: the management address; the firewall admits only the
      # management network.
      http = mgmt ports.natsMonitor;
      jetstream =
        {store_dir = paths.jetstream;}
        # Contract section 6: `critical` fsyncs every write; `standard`
        # keeps the server default (omitted, so both 2.11 and 2.15 apply
        # their own default).
        // (
          if zone.tier == "critical"
          then {sync_interval = "always";}
          else {}
        );
      cluster = {
        name = zone.zone;
        listen = "${h.address}:${toString ports.natsCluster}";
        routes = map (o: "nats-route://${o.address}:${toString ports.natsCluster}") others;
        # Routes only between holders of a zone route certificate: verified
        # against the zone CA both ways, the dialled address against the
        # peer's IP SAN, and the zone's route identity (DNS SAN) mapped to
        # the one route user.
        tls = {
          cert_file = paths.natsRoute.certificate;
          key_file = paths.natsRoute.privateKey;
          ca_file = paths.natsRoute.ca;
          verify_and_map = true;
          timeout = 2;
        };
        authorization.user = natsAccess.routeIdentity zone;
      };
      # Lame-duck shutdown moves stream leaders away before a planned stop;
      # 30 s keeps a rolling reboot of the zone short (default is 2 min).
      lame_duck_duration = "30s";
      lame_duck_grace_period = "10s";
    };

    # The client port (127.0.0.1) admits only the daemons' users, each
    # with the permissions of modules/lib/nats.nix; there is no anonymous
    # (no_auth_user) login. Passwords appear only as bcrypt hashes; each
    # daemon reads its own from a file (LoadCredential=).
    # With nats.systemUser the server's two default accounts are explicit,
    # each under its default name, so nothing moves on an upgrade (JetStream
    # data stays in $G; the servers' RAFT traffic, which uses the system
    # account, keeps its account name while they restart one by one):
    # $SYS holds the controller's system user (meta-leader step-down), $G
    # (the top-level `authorization.users`) the daemons' users.
    natsAccounts = let
      su = zone.nats.systemUser;
      perms = natsAccess.permissions zone;
      u = zone.nats.users;
    in
      {
        authorization.users =
          [
            {
              inherit (u.controller) user;
              password = u.controller.passwordHash;
              permissions = perms.controller;
            }
            {
              inherit (u.gateAgent) user;
              password = u.gateAgent.passwordHash;
              permissions = perms.gateAgent;
            }
          ]
          ++ (
            if u.backup == null
            then []
            else [
              {
                inherit (u.backup) user;
                password = u.backup.passwordHash;
                permissions = perms.backup;
              }
            ]
          );
      }
      // (
        if su == null
        then {}
        else {
          accounts."$SYS".users = [
            {
              inherit (su) user;
              password = su.passwordHash;
            }
          ];
          system_account = "$SYS";
        }
      );

    vipInterface =
      if zone.vip.interface != null
      then zone.vip.interface
      else h.interface;
    trackFilePath = "${paths.agentRuntime}/vrrp-track";
    notifyFifo = "${paths.agentRuntime}/notify.fifo";
    # The files the controller's credentials come from, as installed on this
    # host. Under systemd the zone description's paths (the controller unit's
    # LoadCredential= reads them; the controller sees copies under
    # /run/credentials); a controller the agent spawns itself (process
    # supervisor: the simulator) reads its files in place. The gate agent
    # looks whether each is there (gate 5 names every missing one: a host
    # deployed before its secrets says what to install) and reads the public
    # certificate itself, so the agent's unit needs none of them to start.
    credentials = let
      su = zone.nats.systemUser;
      sources =
        if supervisor == "systemd"
        then {
          tls_certificate = zone.certificates.certificate;
          tls_private_key = zone.certificates.privateKey;
          tls_ca = zone.certificates.ca;
          nats_system_password =
            if su == null
            then null
            else su.passwordFile;
        }
        else {
          tls_certificate = paths.tls.certificate;
          tls_private_key = paths.tls.privateKey;
          tls_ca = paths.tls.ca;
          nats_system_password = paths.natsSystemPassword;
        };
    in
      builtins.removeAttrs sources (
        if su == null
        then ["nats_system_password"]
        else []
      );

    # The agent's lease sighting, read by the controller it starts so a lease
    # the agent already watched expire is taken at once (bsfg_store::LeaseSighting).
    sightingFile = "${paths.agentRuntime}/lease-sighting";

    keepalived = let
      # Both hosts start as BACKUP with nopreempt: the first election is
      # decided by priority, after that the VIP never moves back by itself
      # (no automatic failback, contract section 7).
      k = {
        instance = "bsfg_${zone.zone}";
        # VRRP on the dedicated segment when the zone has one (vrrp.segment),
        # else on the zone segment; the VIP stays on the service interface.
        interface =
          if seg == null
          then h.interface
          else seg.interface;
        state = "BACKUP";
        noPreempt = true;
        virtualRouterId = zone.vrrp.routerId;
        priority = zone.vrrp.priorities.${h.role};
        inherit (zone.vrrp) version advertIntervalMs;
        advertInterval = duration.msToSecondsString zone.vrrp.advertIntervalMs;
        unicastSrcIp =
          if seg == null
          then h.address
          else seg.addresses.${h.role};
        unicastPeers = [
          (
            if seg == null
            then peerServiceHost.address
            else seg.addresses.${peerServiceHost.role}
          )
        ];
        vip = {
          inherit (zone.vip) address prefixLength;
          interface = vipInterface;
        };
        # Keepalived only bids for (and keeps) the VIP while local JetStream
        # is healthy (seed "VRRP health tracking") and the host's gate agent
        # answers (without its agent a host must not stay in charge; the
        # check is what the simulator can prove: keepalived's track_process
        # needs the kernel's process connector, which exists only in the
        # initial network namespace). weight 0: a failing check means FAULT.
        checkScript = {
          name = checkScriptName;
          argv = [bins.gateAgent "check" "--config" paths.agentConfig];
          interval = 1;
          timeout = 2;
          fall = 2;
          rise = 2;
          weight = 0;
          user = "keepalived_script";
        };
        # The gate agent writes a non-zero value here to demote: with weight 0
        # a non-zero value means FAULT, which releases the VIP even under
        # nopreempt (lowering the priority alone would not move it).
        trackFile = {
          name = trackFileName;
          path = trackFilePath;
          weight = 0;
        };
        inherit notifyFifo;
        # vrrp_track_process blocks ({ name; process; paramMatch; delay; }),
        # tracked with weight 0 by the instance: none yet.
        trackProcesses = [];
        # Seconds after boot before keepalived starts (nixpkgs starts it from
        # a timer, 5 s by default). Beta waits longer, so that when the whole
        # zone boots at once alpha wins the first election, as the seed's
        # bootstrap semantics expect; with nopreempt, whoever is MASTER first
        # keeps the VIP.
        bootDelaySeconds =
          if h.role == "alpha"
          then 5
          else 15;
      };
    in
      k
      // {
        # The whole keepalived.conf, and the nixpkgs options that reproduce it.
        configText = render.keepalivedConf k;
        nixpkgs = render.keepalivedParts k;
      };

    controller = {
      inherit (zone) zone;
      node = host;
      listen.address = "${zone.vip.address}:${toString ports.controller}";
      management.address = mgmt ports.controllerManagement;
      tls = {
        inherit (paths.tls) certificate ca;
        private_key = paths.tls.privateKey;
      };
      nats =
        {
          url = "nats://127.0.0.1:${toString ports.natsClient}";
          inherit (zone.nats.users.controller) user;
          password_file = paths.natsControllerPassword;
        }
        // (
          if zone.nats.systemUser == null
          then {}
          else {
            system_user = zone.nats.systemUser.user;
            system_user_password_file = paths.natsSystemPassword;
          }
        );
      store =
        {
          replicas = 3;
          # JetStream leadership lives on the witness (its NATS server_name
          # is its host name): neither service host's crash then waits for
          # a leader election.
          leaders_on = zone.byRole.gamma;
        }
        // zone.store
        // {artifact_dir = paths.artifacts;};
      inherit (zone) limits classes consumers buckets peers;
      lease = {
        enabled = true;
        inherit (zone.lease) bucket ttl;
        renew_interval = zone.lease.renewInterval;
        safety_margin = zone.lease.safetyMargin;
        sighting_file = sightingFile;
      };
      logging = {inherit (zone.logging) format filter;};
    };

    gateAgent = {
      inherit (zone) zone;
      host = host;
      evaluate_interval = zone.gateAgent.evaluateInterval;
      vip.address = zone.vip.address;
      nats = {
        url = "nats://127.0.0.1:${toString ports.natsClient}";
        monitor_url = "http://${mgmt ports.natsMonitor}";
        voters = 3;
        inherit (zone.nats.users.gateAgent) user;
        password_file = paths.natsAgentPassword;
      };
      artifacts = {
        dir = paths.artifacts;
        require_mount_point = requireMountPoint;
      };
      certificate = {
        path = credentials.tls_certificate;
        # The zone CA: what the controller verifies clients and peers with
        # and what nats-server verifies routes with (certificates.ca for
        # both). Held to the same threshold as the leaf.
        trust = [credentials.tls_ca];
        min_validity = zone.certificatePolicy.minValidity;
        inherit (zone.certificatePolicy) policy;
      };
      controller = {
        inherit supervisor;
        unit = controllerUnit;
        command = [bins.controller "--config" paths.controllerConfig];
        management = mgmt ports.controllerManagement;
        ready_timeout = zone.gateAgent.readyTimeout;
        stop_timeout = zone.gateAgent.stopTimeout;
        inherit credentials;
      };
      lease = {
        inherit (zone.lease) bucket ttl;
        sighting_file = sightingFile;
      };
      keepalived = {
        notify_fifo = notifyFifo;
        track_file = trackFilePath;
        # Notifications naming any other VRRP instance are logged and ignored.
        inherit (keepalived) instance;
      };
      management.address = mgmt ports.agentManagement;
      # chronyd's default socket, or its command port on localhost, which
      # answers `tracking` to an unprivileged user.
      time_sync = {
        inherit (zone.time) policy;
        max_offset = zone.time.maxOffset;
        chronyc = bins.chronyc;
      };
      logging = {inherit (zone.logging) format filter;};
    };
  in
    if !(elem supervisor ["systemd" "process"])
    then fail "supervisor = ${toJSON supervisor} must be \"systemd\" or \"process\""
    else
      withFirewall zone {
        inherit (h) name role address prefixLength interface managementAddress managementInterface;
        # disko.devices of the host's role on its declared disks (null: none
        # declared), and those disks: the only ones the installer may touch.
        disko =
          if h.disks == null
          then null
          else disksLib.layout h.disks;
        installDisks =
          if h.disks == null
          then []
          else disksLib.declared h.disks;
        # What each of them becomes (the installer's plan and size checks).
        installDiskUses =
          if h.disks == null
          then []
          else disksLib.uses h.disks;
        # Addresses and routes per interface, default gateway, DNS, chrony
        # (modules/lib/network.nix); modules/base.nix assigns them.
        network = site.hostNetwork {inherit zone host;};
        chrony = site.hostChrony {inherit zone host;};
        runs = {
          nats = true;
          keepalived = isService;
          gateAgent = isService;
          controller = isService;
          artifacts = isService;
          probe = probe != null;
        };
        # gamma's service probe (modules/lib/probe.nix), null elsewhere.
        inherit probe;
        inherit paths ports;
        nats = let
          settings = nats // natsAccounts;
        in {
          inherit settings;
          configText = render.json settings;
        };
        keepalived =
          if isService
          then keepalived
          else null;
        controller =
          if isService
          then {
            config = controller;
            configText = render.toml controller;
          }
          else null;
        gateAgent =
          if isService
          then {
            config = gateAgent;
            configText = render.toml gateAgent;
          }
          else null;
        polkitRule =
          if isService
          then
            render.polkitRule {
              user = agentUser;
              unit = controllerUnit;
              verbs = controllerVerbs;
            }
          else null;
        units = mkUnits {
          runs = {
            gateAgent = isService;
            # Snapshots from gamma: it never serves, so they cost the
            # service hosts nothing.
            backup = h.role == "gamma" && zone.backup != null;
            # Each service host's own /artifacts, on that host.
            artifactBackup = isService && zone.artifactBackup != null;
            probe = probe != null;
          };
          inherit (zone) backup artifactBackup probe;
          natsClientPort = ports.natsClient;
          inherit paths controllerUnit agentUnit controllerUser agentUser artifactsGroup;
          binaries = bins;
          inherit (zone) certificates;
          natsSystemUser = zone.nats.systemUser;
          natsUsers = zone.nats.users;
        };
      };

  # The host's nftables rules (modules/lib/firewall.nix) without exporters:
  # modules/firewall.nix renders its own with the exporter ports when
  # observability is on; the simulator loads `ruleset`.
  withFirewall = zone: settings:
    settings
    // {
      firewall = {
        extraInputRules = firewall.extraInputRules {
          inherit settings zone;
        };
        ruleset = firewall.ruleset {
          inherit settings zone;
        };
      };
    };

  # Every host of a zone at once.
  allHosts = {
    zone,
    pathsFor,
    supervisor ? "systemd",
    binaries ? defaultBinaries,
    requireMountPoint ? true,
  }:
    mapAttrs (host: _:
      hostSettings {
        inherit zone host supervisor binaries requireMountPoint;
        paths = pathsFor host;
      })
    zone.hosts;
in {
  inherit secretPaths isStorePath secretPathError normalise hostSettings allHosts nixosPaths simulatorPaths defaultPorts defaultBinaries controllerUnit agentUnit controllerUser agentUser artifactsGroup roles serviceRoles;
}
