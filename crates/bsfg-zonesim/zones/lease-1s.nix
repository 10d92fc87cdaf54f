# The example zone (hosts/zone.nix, VRRPv3 0.2 s adverts) with the 1 s zone
# lease that was its default before the lease defaults followed the adverts
# (renewed every 200 ms, fenced 250 ms early): the TTL then outlasts the
# ~0.65 s VIP move and the standby's agent waits it out
# (docs/zone-simulator.md, "Alpha crash: failover").
(import ../../../hosts/zone.nix)
// {
  lease = {
    bucket = "bsfg_lease";
    ttl = "1s";
    renewInterval = "200ms";
    safetyMargin = "250ms";
  };
}
