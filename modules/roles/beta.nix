# Role module: only SELECTS the role. What the role implies is computed from
# the zone description (modules/lib/zone.nix) and enforced by assertions in
# the service modules. Beta: the secondary service host: NATS, keepalived (lower VRRP priority), gate agent, controller when promoted, /artifacts.
{
  imports = [../default.nix];
  services.bsfg = {
    enable = true;
    role = "beta";
  };
}
