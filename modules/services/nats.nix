# NATS JetStream on every zone host, through nixpkgs' services.nats, running
# the nats-server release the tests run (services.bsfg.packages.natsServer,
# modules/lib/versions.nix) with the configuration modules/lib renders
# (/etc/bsfg/nats.json, the same JSON text the zone simulator hands its
# nats-server processes): client port on localhost, monitoring on the
# management address, the 3-node cluster over host addresses, sync_interval
# from the durability tier, route TLS with zone certificates, one user per
# daemon with its permissions and, with nats.systemUser, the accounts
# (passwords only as bcrypt hashes; each password reaches its daemon alone,
# by LoadCredential=).
#
# nixpkgs' services.nats has no package option and starts nats-server with
# a file it generates from services.nats.settings. The module still assigns
# settings, so config.services.nats.settings shows what runs (nixpkgs adds
# server_name, port and jetstream.store_dir from serverName, port and
# dataDir, the same values), and replaces ExecStart.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  natsSettings = s.nats.settings;
  rawConfig = pkgs.writeText "nats.json" s.nats.configText;
  # The route certificate and key exist only on the host (LoadCredential=),
  # so the build checks the configuration without cluster.tls; every other
  # setting is checked as deployed.
  checkable = pkgs.writeText "nats-check.json" (builtins.toJSON (natsSettings
    // {
      cluster = builtins.removeAttrs natsSettings.cluster ["tls" "authorization"];
    }));
  configFile =
    if cfg.validateConfig
    then
      pkgs.runCommand "nats-checked.json" {} ''
        ${lib.getExe' cfg.packages.natsServer "nats-server"} --config ${checkable} -t
        ln -s ${rawConfig} $out
      ''
    else rawConfig;
in {
  config = lib.mkIf cfg.enable {
    environment.etc."bsfg/nats.json".source = configFile;

    services.nats = {
      enable = true;
      jetstream = true;
      serverName = natsSettings.server_name;
      port = natsSettings.port;
      dataDir = s.paths.jetstream;
      settings = builtins.removeAttrs natsSettings ["server_name" "port"];
    };

    systemd.services.nats = {
      inherit (s.units.nats) wants after unitConfig;
      serviceConfig.ExecStart = lib.mkForce s.units.nats.serviceConfig.ExecStart;
      # The route certificate, its key and the zone CA (cluster.tls).
      serviceConfig.LoadCredential = s.units.nats.serviceConfig.LoadCredential;
      restartTriggers = [configFile];
    };

    # dataDir is not /var/lib/nats, so the nixpkgs module leaves creating it
    # to us (see its dataDir description).
    systemd.tmpfiles.rules = ["d ${s.paths.jetstream} 0750 ${config.services.nats.user} ${config.services.nats.group} -"];
  };
}
