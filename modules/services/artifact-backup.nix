# Scheduled snapshots of the artifact store on alpha and beta (zone setting
# `artifactBackup`): bsfg-artifact-backup.timer starts
# bsfg-artifact-backup.service, which runs `bsfgctl backup-artifacts` on the
# host's own /artifacts: new blobs copied and verified against their content
# address, unchanged ones hard-linked, the oldest pruned beyond
# artifactBackup.keep, the result written as metrics for the node exporter
# (bsfg_artifact_backup_*; alerts BsfgArtifactBackupFailed,
# BsfgArtifactBackupStale). Unit and timer are rendered by
# modules/lib/units.nix; this module assigns them.
{
  config,
  lib,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  svc = s.units.bsfg-artifact-backup or null;
  timer = s.units.bsfg-artifact-backup-timer or null;
in {
  config = lib.mkIf (cfg.enable && svc != null) {
    users.users.bsfg-artifact-backup = {
      isSystemUser = true;
      group = "bsfg-artifact-backup";
      description = "BSFG artifact store snapshots";
    };
    users.groups.bsfg-artifact-backup = {};

    systemd.services.bsfg-artifact-backup = {
      inherit (svc) description wantedBy wants after unitConfig serviceConfig restartIfChanged;
    };
    systemd.timers.bsfg-artifact-backup = {
      inherit (timer) description wantedBy timerConfig;
    };
  };
}
