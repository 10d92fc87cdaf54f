# NATS JetStream on every zone host, through nixpkgs' services.nats.
# The server settings (client port on localhost, monitoring on the management
# address, 3-node cluster over host IPs, sync_interval from the durability
# tier) come from modules/lib/zone.nix, the same attribute set the zone
# simulator hands to its nats-server processes.
#
# With nats.systemUser the settings also define the accounts (library:
# `natsAccounts`): $SYS with the controller's system user, whose password
# appears here only as its bcrypt hash (this file's JSON is in the Nix
# store; the password reaches the controller alone, by LoadCredential= in
# controller.nix), and $G with a password-less no_auth_user, so every other
# client connects as before. nixpkgs' build-time `nats-server -t` check
# (validateConfig) covers them.
#
# Version note: the appliance runs the pinned nixpkgs' nats-server (2.11.x at
# the time of writing), CI and the simulator run 2.15.1. The settings used
# here exist in both (docs/nixpkgs-options-checked.md).
{
  config,
  lib,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  natsSettings = s.nats.settings;
in {
  config = lib.mkIf cfg.enable {
    services.nats = {
      enable = true;
      jetstream = true;
      serverName = natsSettings.server_name;
      port = natsSettings.port;
      dataDir = s.paths.jetstream;
      # server_name, port and jetstream.store_dir are also written by the
      # nixpkgs module from the options above; the values are identical.
      settings = builtins.removeAttrs natsSettings ["server_name" "port"];
    };

    systemd.services.nats = {
      # Cluster and monitoring listeners bind host addresses: wait for them.
      wants = ["network-online.target"];
      after = ["network-online.target"];
      # Never write JetStream data onto the root file system because the
      # NVMe mount failed: refuse to start instead.
      unitConfig.RequiresMountsFor = [s.paths.jetstream];
    };

    # dataDir is not /var/lib/nats, so the nixpkgs module leaves creating it
    # to us (see its dataDir description).
    systemd.tmpfiles.rules = ["d ${s.paths.jetstream} 0750 ${config.services.nats.user} ${config.services.nats.group} -"];
  };
}
