# The example zone (hosts/zone.nix) plus what `bsfgctl commission` needs for
# its round trip: a dedicated class and a consumer reading only it, both
# granted to the simulator's producer identity. (The consumer's name sorts
# after erp-orders, so the simulator's own workload stays the example's.)
let
  base = import ../../../../hosts/zone.nix;
in
  base
  // {
    classes =
      base.classes
      // {
        commissioning = {
          max_age = "1d";
          max_bytes = "64 MiB";
          append = ["mes-producer"];
        };
      };
    consumers =
      base.consumers
      // {
        verify-commissioning = {
          source = "store:commissioning";
          start = "earliest";
          allowed = ["mes-producer"];
        };
      };
  }
