# Zone descriptions for the zone-library tests: a valid base and a helper to
# derive variants from it. Plain data, builtins only.
rec {
  base = import ../../hosts/zone.nix;

  # Shallow-merge `over` into the base description, one level deep for the
  # attribute sets that tests like to tweak (hosts.<name>, vip, vrrp, lease).
  with' = over: base // over;

  withHost = name: attrs:
    base
    // {
      hosts = base.hosts // {${name} = base.hosts.${name} // attrs;};
    };

  withVip = attrs: base // {vip = base.vip // attrs;};
  withVrrp = attrs: base // {vrrp = base.vrrp // attrs;};
  withLease = attrs: base // {lease = (base.lease or {}) // attrs;};
}
