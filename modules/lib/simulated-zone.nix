# The zone a simulator runs (both modes: modules/lib/simulator.nix and
# modules/lib/container.nix): the description, normalised, with the
# instance's NATS system user and daemons' NATS users and the simulated
# hosts' storage cap (see simulator.nix for the arguments).
{
  zoneFile,
  natsSystemUser ? null,
  natsUsers ? null,
  storageCap ? "256 MiB",
}: let
  described = import zoneFile;
  withUser =
    if natsSystemUser == null
    then described
    else described // {nats = (described.nats or {}) // {systemUser = natsSystemUser;};};
  withUsers =
    if natsUsers == null
    then withUser
    else withUser // {nats = (withUser.nats or {}) // {users = natsUsers;};};
  desc =
    if storageCap == null
    then withUsers
    else
      withUsers
      // {
        classes = builtins.mapAttrs (_: c: c // {max_bytes = storageCap;}) (withUsers.classes or {});
        store = (withUsers.store or {}) // {forward_max_bytes = storageCap;};
      };
in
  (import ./zone.nix).normalise desc
