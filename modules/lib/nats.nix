# What each NATS client of a zone host may do, and how the servers of the
# zone recognise each other: pure data for nats-server's configuration
# (rendered by zone.nix into every host's nats.json).
#
# Client port (127.0.0.1 only): no anonymous user; one user per daemon,
# each allowed exactly the JetStream API subjects of the streams it uses
# (a stream named S is addressed as `$JS.API.STREAM.<verb>.S`,
# `$JS.API.CONSUMER.<verb>.S...`, `$JS.API.DIRECT.GET.S`, `$JS.ACK.S...`).
# Replies come back on the client's inbox (`_INBOX.>`), the only subject
# either daemon subscribes to.
#
# Routes: TLS with the zone CA in both directions (nats-server always
# verifies route certificates), the dialling side checks the peer's address
# against its IP SAN, and `verify_and_map` admits only certificates that
# also carry the zone's route identity as DNS SAN.
let
  inherit (builtins) attrNames concatMap;

  # Every subject a JetStream client needs to use stream `s` (create,
  # update, read, consume, acknowledge), and none of another stream's.
  streamApi = s: [
    "$JS.API.STREAM.*.${s}" # CREATE, UPDATE, INFO, PURGE
    "$JS.API.STREAM.MSG.GET.${s}"
    "$JS.API.STREAM.LEADER.STEPDOWN.${s}"
    "$JS.API.CONSUMER.*.${s}" # CREATE (ephemeral), NAMES, LIST
    "$JS.API.CONSUMER.*.${s}.>" # CREATE with name and filter, INFO, DELETE
    "$JS.API.CONSUMER.DURABLE.CREATE.${s}.>"
    "$JS.API.CONSUMER.MSG.NEXT.${s}.>"
    "$JS.API.CONSUMER.LEADER.STEPDOWN.${s}.>"
    "$JS.API.DIRECT.GET.${s}"
    "$JS.API.DIRECT.GET.${s}.>"
    "$JS.ACK.${s}.>"
    "$JS.FC.${s}.>"
  ];

  inbox = "_INBOX.>";

  # Stream names and subjects as the controller makes them
  # (bsfg_core::source::Buffer, bsfg_store::{cursors, artifact_index, lease}).
  controllerStreams = zone:
    map (c: {
      stream = "facts_${c}";
      subjects = "facts.${c}.>";
    }) (attrNames zone.classes)
    ++ map (p: {
      stream = "fwd_${p}";
      subjects = "fwd.${p}.>";
    }) (attrNames zone.peers)
    ++ map (b: {
      stream = "KV_${b}";
      subjects = "$KV.${b}.>";
    }) ["bsfg_cursors" "bsfg_artifacts" zone.lease.bucket];

  leaseStream = zone: "KV_${zone.lease.bucket}";
in {
  inherit streamApi controllerStreams;

  # nats-server `permissions` blocks of the two daemons' users.
  permissions = zone: {
    controller = {
      # STREAM.LIST: leader placement walks the account's streams (all of
      # them the controller's own); listing reveals configurations only.
      publish.allow =
        ["$JS.API.INFO" "$JS.API.STREAM.LIST" "$JS.API.STREAM.NAMES"]
        ++ concatMap (s: [s.subjects] ++ streamApi s.stream) (controllerStreams zone);
      subscribe.allow = [inbox];
    };
    # Lease sighting only: the bucket's stream info and its one key, read;
    # creating the (empty) bucket when the agent starts before any
    # controller ever ran, never writing a key of it.
    gateAgent = {
      publish.allow = let
        s = leaseStream zone;
      in [
        "$JS.API.STREAM.CREATE.${s}"
        "$JS.API.STREAM.INFO.${s}"
        "$JS.API.STREAM.MSG.GET.${s}"
        "$JS.API.DIRECT.GET.${s}"
        "$JS.API.DIRECT.GET.${s}.>"
      ];
      subscribe.allow = [inbox];
    };
    # Snapshots and restores (bsfgctl backup/restore, nats.users.backup):
    # nats-server's stream snapshot API for every stream, its flow-control
    # acknowledgements and restore chunks; deleting a stream only to
    # replace it with its snapshot (`restore --replace`). No message is
    # published or read outside a snapshot.
    backup = {
      publish.allow = [
        "$JS.API.INFO"
        "$JS.API.STREAM.NAMES"
        "$JS.API.STREAM.LIST"
        "$JS.API.STREAM.INFO.*"
        "$JS.API.STREAM.SNAPSHOT.*"
        "$JS.SNAPSHOT.ACK.>"
        "$JS.API.STREAM.RESTORE.*"
        "$JS.SNAPSHOT.RESTORE.>"
        "$JS.API.STREAM.DELETE.*"
      ];
      subscribe.allow = [inbox];
    };
  };

  # The DNS SAN every route certificate of the zone carries, and the
  # user name `verify_and_map` maps it to.
  routeIdentity = zone: "nats-route.${zone.zone}";
}
