# Scheduled snapshots on gamma (zone setting `backup`): bsfg-backup.timer
# starts bsfg-backup.service, which runs `bsfgctl backup` as the zone's
# backup NATS user (nats.users.backup): every stream snapshotted, read back,
# the oldest pruned beyond backup.keep, the result written as metrics for
# the node exporter (bsfg_backup_*; alerts BsfgBackupStale,
# BsfgBackupFailed). Unit and timer are rendered by modules/lib/units.nix;
# this module assigns them.
{
  config,
  lib,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  svc = s.units.bsfg-backup or null;
  timer = s.units.bsfg-backup-timer or null;
in {
  config = lib.mkIf (cfg.enable && svc != null) {
    users.users.bsfg-backup = {
      isSystemUser = true;
      group = "bsfg-backup";
      description = "BSFG zone snapshots";
    };
    users.groups.bsfg-backup = {};

    systemd.services.bsfg-backup = {
      inherit (svc) description wantedBy wants after unitConfig serviceConfig restartIfChanged;
    };
    systemd.timers.bsfg-backup = {
      inherit (timer) description wantedBy timerConfig;
    };
  };
}
