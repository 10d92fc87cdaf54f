# IPv4 helpers for the zone library. Pure: builtins only, no nixpkgs.
#
# Only IPv4 is supported for now: the zone's VRRP segment, the JetStream
# cluster and the VIP are IPv4 in every seed document. Functions throw with
# a message naming the offending value, so a typo in hosts/zone.nix reads as
# one actionable line.
let
  inherit (builtins) match elemAt foldl' genList toString;

  # "10.0.0.1" -> [ 10 0 0 1 ] or null when it is not a dotted quad.
  octets = s: let
    m = match "([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})" s;
  in
    if !(builtins.isString s) || m == null
    then null
    else let
      parsed = map builtins.fromJSON (map stripZeros m);
    in
      if builtins.all (o: o <= 255) parsed
      then parsed
      else null;

  # "010" would be parsed as JSON and fail; leading zeros are also ambiguous
  # (octal to some tools), so they are stripped here and refused by isIPv4.
  stripZeros = o: let
    m = match "0*([0-9]+)" o;
  in
    elemAt m 0;

  hasLeadingZero = s: match ".*(^|\\.)0[0-9].*" s != null;

  isIPv4 = s: builtins.isString s && octets s != null && !(hasLeadingZero s);

  # 2^n for 0 <= n <= 32, integer arithmetic only.
  pow2 = n: foldl' (acc: _: acc * 2) 1 (genList (x: x) n);

  toInt = s: let
    o = octets s;
  in
    if o == null || hasLeadingZero s
    then throw "zone: '${toString s}' is not an IPv4 address (dotted quad, no leading zeros)"
    else foldl' (acc: x: acc * 256 + x) 0 o;

  # Network number of an address under a prefix length.
  network = addr: prefixLength: let
    block = pow2 (32 - prefixLength);
  in
    (toInt addr) / block;

  sameSubnet = a: b: prefixLength: network a prefixLength == network b prefixLength;

  # The all-zeros and all-ones host addresses of a subnet are not usable for
  # hosts or the VIP (prefix lengths below 31 only).
  isNetworkOrBroadcast = addr: prefixLength: let
    block = pow2 (32 - prefixLength);
    offset = (toInt addr) - (network addr prefixLength) * block;
  in
    prefixLength < 31 && (offset == 0 || offset == block - 1);

  validPrefix = p: builtins.isInt p && p >= 8 && p <= 32;

  # "10.0.0.0/24" -> { address = "10.0.0.0"; prefixLength = 24; } or null.
  parseCidr = s: let
    m =
      if builtins.isString s
      then match "([0-9.]+)/([0-9]{1,2})" s
      else null;
  in
    if m == null || !(isIPv4 (elemAt m 0))
    then null
    else let
      p = builtins.fromJSON (elemAt m 1);
    in
      if p >= 0 && p <= 32
      then {
        address = elemAt m 0;
        prefixLength = p;
      }
      else null;

  inCidr = addr: cidr: let
    c = parseCidr cidr;
  in
    c != null && sameSubnet addr c.address c.prefixLength;
in {
  inherit isIPv4 toInt network sameSubnet isNetworkOrBroadcast validPrefix parseCidr inCidr;
  # Exposed for tests.
  _pow2 = pow2;
  _octets = octets;
}
