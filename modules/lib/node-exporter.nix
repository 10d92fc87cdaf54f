# The node exporter of a zone host (host metrics on the management
# address): the collectors and flags the alert rules need, as data. ONE
# renderer: modules/observability.nix assigns `enabledCollectors` and
# `extraFlags` to nixpkgs' services.prometheus.exporters.node (whose unit
# runs `node_exporter --collector.<each> --web.listen-address <address>:<port>
# <extraFlags>`), and the zone simulator starts Debian's node exporter
# with `args`, the same arguments in the same order.
#
#   host { settings; port; } -> { listen = { address; port; };
#     enabledCollectors; extraFlags; args; }
let
  inherit (builtins) toString map;
in {
  # nixpkgs' default port of the exporter (services.bsfg.observability.nodeExporterPort).
  defaultPort = 9100;

  host = {
    settings, # hostSettings of the host (managementAddress, units, paths)
    port, # the exporter's port
  }: let
    # The state of the zone's units (BsfgControllerOnGamma,
    # BsfgControllerRunningOnStandby), only those. The default collectors
    # stay on: filesystem (BsfgDiskAlmostFull), timex (BsfgClockOffset).
    enabledCollectors = ["systemd"];
    extraFlags =
      [''--collector.systemd.unit-include=(bsfg-.*|nats|keepalived)\.service'']
      # Gamma with scheduled snapshots: bsfg_backup_* from the metrics file
      # bsfg-backup.service writes (textfile collector).
      ++ (
        if settings.units ? bsfg-backup
        then ["--collector.textfile.directory=${settings.paths.backupState}"]
        else []
      )
      # Alpha and beta with artifact snapshots: bsfg_artifact_backup_* from
      # bsfg-artifact-backup.service's metrics file. (Gamma has no artifact
      # store, the service hosts no stream snapshots: one textfile
      # directory per host.)
      ++ (
        if settings.units ? bsfg-artifact-backup
        then ["--collector.textfile.directory=${settings.paths.artifactBackupState}"]
        else []
      );
    listen = {
      address = settings.managementAddress;
      inherit port;
    };
  in {
    inherit listen enabledCollectors extraFlags;
    args =
      map (c: "--collector.${c}") enabledCollectors
      ++ ["--web.listen-address" "${listen.address}:${toString port}"]
      ++ extraFlags;
  };
}
