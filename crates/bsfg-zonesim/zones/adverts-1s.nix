# The example zone (hosts/zone.nix) with VRRPv2 and 1 s adverts, the
# slowest VRRP a Triad zone may run: the simulator measures "first
# acknowledged append within 1 s after the VIP moves" on it
# (`bsfg-zonesim --zone crates/bsfg-zonesim/zones/adverts-1s.nix drill alpha-crash`).
(import ../../../hosts/zone.nix)
// {
  vrrp = {
    routerId = 51;
    version = 2;
    advertIntervalMs = 1000;
    priorities = {
      alpha = 150;
      beta = 100;
    };
  };
}
