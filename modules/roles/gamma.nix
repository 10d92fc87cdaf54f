# Role module: only SELECTS the role. What the role implies is computed from
# the zone description (modules/lib/zone.nix) and enforced by assertions in
# the service modules. Gamma: the quorum host: NATS only; never keepalived, a gate agent, a controller or /artifacts (enforced by assertions).
{
  imports = [../default.nix];
  services.bsfg = {
    enable = true;
    role = "gamma";
  };
}
