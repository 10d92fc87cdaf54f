# Site network and time settings of a zone: the default gateway, DNS, static
# routes (the path to each peer zone), an optional dedicated VRRP segment,
# and chrony (the three hosts peer with each other and with the site's
# servers, and keep one time among themselves when the site loses its
# upstream: orphan mode). Pure; every mistake throws one "zone: " line
# naming the setting.
#
#   normaliseNetwork { desc; hosts; managementNetwork; }  -> network
#   normaliseTime desc                                   -> time (servers, localStratum, policy, maxOffset)
#   normaliseVrrpSegment { desc; hosts; vip; }           -> null | { interface; prefixLength; addresses; }
#   hostNetwork { zone; host; }                          -> what the host configures (README.md)
#   networking network                                   -> NixOS `networking.*` of hostNetwork's result
#   hostChrony { zone; host; }                           -> { servers; extraConfig; peers; }
let
  net = import ./net.nix;
  inherit (builtins) attrNames attrValues concatStringsSep elem filter isAttrs isInt isList isString length toJSON;
  fail = msg: throw "zone: ${msg}";
  get = attrs: name: default:
    if isAttrs attrs && attrs ? ${name}
    then attrs.${name}
    else default;
  unknownKeys = where: known: a: let
    u = filter (k: !(elem k known)) (attrNames a);
  in
    if u == []
    then null
    else "unknown setting(s) ${concatStringsSep ", " (map (k: "${where}.${k}") u)}; known: ${concatStringsSep ", " (map (k: "${where}.${k}") known)}";
  firstError = errors: let
    e = filter (x: x != null) errors;
  in
    if e == []
    then null
    else builtins.head e;
  managementPrefix = managementNetwork: (net.parseCidr managementNetwork).prefixLength;
  # The segment an address is reached on from `h`: "zone" (the host's
  # `interface`), "management", or null.
  segmentOf = managementNetwork: h: addr:
    if net.sameSubnet addr h.address h.prefixLength
    then "zone"
    else if h.managementAddress != h.address && net.inCidr addr managementNetwork
    then "management"
    else null;
in rec {
  normaliseNetwork = {
    desc,
    hosts, # normalised hosts
    managementNetwork,
  }: let
    n = get desc "network" {};
    gw = get n "defaultGateway" null;
    nameservers = get n "nameservers" [];
    routes = get n "routes" [];
    hostList = attrValues hosts;
    onEveryHost = where: addr:
      firstError (map (h:
        if segmentOf managementNetwork h addr == null
        then "${where} ${addr} is on no segment of host ${h.name} (zone ${h.address}/${toString h.prefixLength}${
          if h.managementAddress != h.address
          then ", management ${managementNetwork}"
          else ""
        }): a next hop must be directly reachable"
        else null)
      hostList);
    checkRoute = i: r: let
      where = "network.routes.${toString i}";
      dest = get r "destination" null;
      via = get r "via" null;
      c = net.parseCidr dest;
    in
      if !(isAttrs r)
      then "${where} must be { destination = \"10.10.0.0/24\"; via = \"10.20.0.1\"; }"
      else if unknownKeys where ["destination" "via"] r != null
      then unknownKeys where ["destination" "via"] r
      else if c == null
      then "${where}.destination = ${toJSON dest} must be an IPv4 network in CIDR form, e.g. \"10.10.0.0/24\""
      else if net.toInt c.address != net.network c.address c.prefixLength * net._pow2 (32 - c.prefixLength)
      then "${where}.destination = ${toJSON dest}: ${c.address} is not the network address of its /${toString c.prefixLength}"
      else if !(net.isIPv4 via)
      then "${where}.via = ${toJSON via} must be the IPv4 address of the next hop"
      else if c.prefixLength == 0
      then "${where}.destination ${dest} is the default route: set network.defaultGateway instead"
      else onEveryHost "${where}.via" via;
    indexed = builtins.genList (i: {
      inherit i;
      r = builtins.elemAt routes i;
    }) (length routes);
    error =
      if !(isAttrs n)
      then "`network` must be an attribute set: { defaultGateway = \"10.20.0.1\"; nameservers = [ ... ]; routes = [ ... ]; }"
      else
        firstError ([
            (unknownKeys "network" ["defaultGateway" "nameservers" "routes"] n)
            (
              if gw == null
              then null
              else if !(net.isIPv4 gw)
              then "network.defaultGateway = ${toJSON gw} must be an IPv4 address (or null: no default route)"
              else onEveryHost "network.defaultGateway" gw
            )
            (
              if !(isList nameservers)
              then "network.nameservers must be a list of IPv4 addresses"
              else
                firstError (map (s:
                  if net.isIPv4 s
                  then null
                  else "network.nameservers: ${toJSON s} is not an IPv4 address")
                nameservers)
            )
            (
              if !(isList routes)
              then "network.routes must be a list of { destination; via; }"
              else null
            )
          ]
          ++ (
            if isList routes
            then map (x: checkRoute x.i x.r) indexed
            else []
          ));
  in
    if error != null
    then fail error
    else {
      defaultGateway = gw;
      inherit nameservers;
      routes = map (r: {inherit (r) destination via;}) routes;
    };

  normaliseTime = desc: let
    t = get desc "time" {};
    servers = get t "servers" [];
    localStratum = get t "localStratum" 10;
    # What the gate agents do while their host's clock is not synchronised
    # (chronyd's tracking): warn (status, metrics, log), deny (gate 5 fails:
    # certificate validity needs true time), off (chronyd not asked).
    policy = get t "policy" "warn";
    maxOffset = get t "maxOffset" "1s";
    known = ["servers" "localStratum" "policy" "maxOffset"];
  in
    if !(isAttrs t)
    then fail "`time` must be an attribute set: { servers = [ \"ntp1.site.example\" ]; localStratum = 10; }"
    else if desc ? timeServers
    then fail "timeServers is now time.servers"
    else if unknownKeys "time" known t != null
    then fail (unknownKeys "time" known t)
    else if !(isList servers) || builtins.any (s: !(isString s) || builtins.match "[A-Za-z0-9.:-]+" s == null) servers
    then fail "time.servers = ${toJSON servers} must be a list of NTP server names or addresses"
    else if !(isInt localStratum) || localStratum < 1 || localStratum > 15
    then fail "time.localStratum = ${toJSON localStratum} must be an integer in 1..15 (the stratum the zone serves itself at without upstream; above the site servers')"
    else if !(elem policy ["warn" "deny" "off"])
    then fail "time.policy = ${toJSON policy} must be \"warn\" (report an unsynchronised clock), \"deny\" (refuse promotion while it is) or \"off\""
    else if !(isString maxOffset) || builtins.match "[0-9]+(ms|s)" maxOffset == null || builtins.match "0+(ms|s)" maxOffset != null
    then fail "time.maxOffset = ${toJSON maxOffset} must be a positive duration in ms or s, e.g. \"500ms\" or \"1s\" (the largest clock offset still counted as synchronised)"
    else {inherit servers localStratum policy maxOffset;};

  normaliseVrrpSegment = {
    desc,
    hosts,
    vip,
  }: let
    v = get desc "vrrp" {};
    s = get v "segment" null;
    interface = get s "interface" null;
    prefixLength = get s "prefixLength" 30;
    addresses = get s "addresses" {};
    service = filter (h: elem h.role ["alpha" "beta"]) (attrValues hosts);
    roleAddr = role: get addresses role null;
    allAddresses = map (h: h.address) (attrValues hosts) ++ [vip.address];
  in
    if s == null
    then null
    else if !(isAttrs s)
    then fail "vrrp.segment must be null or { interface = \"eno3\"; prefixLength = 30; addresses = { alpha = \"10.40.0.1\"; beta = \"10.40.0.2\"; }; }"
    else if unknownKeys "vrrp.segment" ["interface" "prefixLength" "addresses"] s != null
    then fail (unknownKeys "vrrp.segment" ["interface" "prefixLength" "addresses"] s)
    else if !(isString interface) || interface == ""
    then fail "vrrp.segment.interface must name the interface of the dedicated VRRP segment on alpha and beta, e.g. \"eno3\""
    else if !(net.validPrefix prefixLength)
    then fail "vrrp.segment.prefixLength = ${toJSON prefixLength} must be an integer between 8 and 32"
    else if !(isAttrs addresses) || attrNames addresses != ["alpha" "beta"]
    then fail "vrrp.segment.addresses must give exactly alpha's and beta's address on the segment: { alpha = \"10.40.0.1\"; beta = \"10.40.0.2\"; }"
    else if !(net.isIPv4 (roleAddr "alpha")) || !(net.isIPv4 (roleAddr "beta"))
    then fail "vrrp.segment.addresses: ${toJSON addresses} must be IPv4 addresses"
    else if roleAddr "alpha" == roleAddr "beta"
    then fail "vrrp.segment.addresses: alpha and beta both have ${roleAddr "alpha"}"
    else if !(net.sameSubnet (roleAddr "alpha") (roleAddr "beta") prefixLength)
    then fail "vrrp.segment.addresses: ${roleAddr "alpha"} and ${roleAddr "beta"} are not in one /${toString prefixLength}"
    else if net.isNetworkOrBroadcast (roleAddr "alpha") prefixLength || net.isNetworkOrBroadcast (roleAddr "beta") prefixLength
    then fail "vrrp.segment.addresses: a network or broadcast address of the /${toString prefixLength}"
    else if builtins.any (a: elem a allAddresses) [(roleAddr "alpha") (roleAddr "beta")]
    then fail "vrrp.segment.addresses must be addresses of their own, not a host address or the VIP"
    else if builtins.any (h: h.interface == interface || h.managementInterface == interface) service
    then fail "vrrp.segment.interface = \"${interface}\" is also a host's zone or management interface: a dedicated segment needs its own interface"
    else {inherit interface prefixLength addresses;};

  # What host `host` configures: addresses and routes per interface, the
  # default gateway, the DNS servers.
  hostNetwork = {
    zone,
    host,
  }: let
    h = zone.hosts.${host};
    n = zone.network;
    seg = zone.vrrp.segment;
    ifaceOf = addr:
      if segmentOf zone.managementNetwork h addr == "management"
      then h.managementInterface
      else h.interface;
    route = r: let
      c = net.parseCidr r.destination;
    in {
      interface = ifaceOf r.via;
      route = {
        inherit (c) address prefixLength;
        inherit (r) via;
      };
    };
    addr = interface: address: prefixLength: {
      inherit interface;
      address = {inherit address prefixLength;};
    };
    addresses =
      [(addr h.interface h.address h.prefixLength)]
      ++ (
        if h.managementAddress != h.address
        then [(addr h.managementInterface h.managementAddress (managementPrefix zone.managementNetwork))]
        else []
      )
      ++ (
        if seg != null && seg.addresses ? ${h.role}
        then [(addr seg.interface seg.addresses.${h.role} seg.prefixLength)]
        else []
      );
    routes = map route n.routes;
    interfaces = builtins.listToAttrs (map (i: {
        name = i;
        value = {
          addresses = map (a: a.address) (filter (a: a.interface == i) addresses);
          routes = map (r: r.route) (filter (r: r.interface == i) routes);
        };
      }) (attrNames (builtins.listToAttrs (map (x: {
        name = x.interface;
        value = null;
      }) (addresses ++ routes)))));
  in {
    inherit interfaces;
    defaultGateway =
      if n.defaultGateway == null
      then null
      else {
        address = n.defaultGateway;
        interface = ifaceOf n.defaultGateway;
      };
    inherit (n) nameservers;
  };

  # hostNetwork's result as NixOS `networking.*` values, for the installed
  # host (modules/base.nix) and its installer image (modules/installer.nix)
  # alike. The keys do not depend on the zone (services.bsfg.hostName
  # defaults to networking.hostName); defaultGateway is null without one,
  # and the modules then leave it undefined.
  networking = network: {
    interfaces =
      builtins.mapAttrs (_: i: {
        ipv4.addresses = i.addresses;
        ipv4.routes = i.routes;
      })
      network.interfaces;
    inherit (network) defaultGateway nameservers;
  };

  # chrony: the site's servers, the other two hosts as peers, and orphan
  # mode: without any upstream the three elect one of themselves (by
  # reference id) and stay on one time at `localStratum`.
  hostChrony = {
    zone,
    host,
  }: let
    peers = map (h: h.address) (filter (h: h.name != host) (attrValues zone.hosts));
  in {
    inherit (zone.time) servers;
    inherit peers;
    extraConfig =
      concatStringsSep "\n" (
        ["# services.bsfg: the other zone hosts, as symmetric peers (polled every 16 to 64 s on the zone segment, so that they agree soon after the upstream is lost)"]
        ++ map (p: "peer ${p} iburst minpoll 4 maxpoll 6") peers
        ++ map (p: "allow ${p}") peers
        ++ [
          "# services.bsfg: without upstream the zone keeps one time among its hosts"
          "local stratum ${toString zone.time.localStratum} orphan"
          "# services.bsfg: step a clock that is far off during the first updates only"
          "makestep 1.0 3"
        ]
      )
      + "\n";
  };
}
