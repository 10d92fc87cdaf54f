# The example zone (hosts/zone.nix) with a 500 ms zone lease (renewed every
# 100 ms, fenced 125 ms early): what a shorter TTL buys on the Alpha-crash
# failover with 0.2 s VRRPv3 adverts, where the 1 s default TTL outlasts the
# VIP move (docs/zone-simulator.md, "The lease on the failover path").
(import ../../../hosts/zone.nix)
// {
  lease = {
    bucket = "bsfg_lease";
    ttl = "500ms";
    renewInterval = "100ms";
    safetyMargin = "125ms";
  };
}
