# The zone a simulator runs (both modes: modules/lib/simulator.nix and
# modules/lib/container.nix): the description, normalised, with the
# instance's NATS system user and the simulated hosts' storage cap (see
# simulator.nix for both arguments).
{
  zoneFile,
  natsSystemUser ? null,
  storageCap ? "256 MiB",
}: let
  described = import zoneFile;
  withUser =
    if natsSystemUser == null
    then described
    else described // {nats = (described.nats or {}) // {systemUser = natsSystemUser;};};
  desc =
    if storageCap == null
    then withUser
    else
      withUser
      // {
        classes = builtins.mapAttrs (_: c: c // {max_bytes = storageCap;}) (withUser.classes or {});
        store = (withUser.store or {}) // {forward_max_bytes = storageCap;};
      };
in
  (import ./zone.nix).normalise desc
