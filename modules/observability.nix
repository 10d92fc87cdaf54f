# The seed's "Observability Placement" table: host metrics and JetStream
# metrics on every host, keepalived state and controller health on the
# service hosts (exported by the gate agent and the controller themselves on
# their management addresses), logs zone-local first (journald), forwarded
# second (optional systemd-journal-upload). The zone's alert rules and
# Grafana dashboard (ops/) are installed under /etc/bsfg/monitoring for a
# Prometheus/Grafana elsewhere (with the service probe's scrape job), and /etc/bsfg/zone.json tells bsfgctl what
# the zone should look like (modules/lib/operator.nix).
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption mkEnableOption types literalExpression;
  cfg = config.services.bsfg;
  ocfg = cfg.observability;
  s = cfg.settings;
  nodeExporter = import ./lib/node-exporter.nix;
in {
  options.services.bsfg.observability = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to run the node and NATS Prometheus exporters on the management address.";
    };

    nodeExporterPort = mkOption {
      type = types.port;
      default = nodeExporter.defaultPort;
      defaultText = literalExpression "9100";
      description = "Port of the node exporter (host metrics).";
    };

    natsExporterPort = mkOption {
      type = types.port;
      default = 7777;
      description = "Port of the NATS exporter (JetStream metrics from the local monitoring endpoint).";
    };

    exporterPorts = mkOption {
      type = types.listOf types.port;
      readOnly = true;
      internal = true;
      default = [ocfg.nodeExporterPort ocfg.natsExporterPort];
      description = "Exporter ports, for the firewall.";
    };

    journalUpload = {
      enable = mkEnableOption "forwarding the journal to a central systemd-journal-remote (logs stay zone-local first)";
      url = mkOption {
        type = types.str;
        example = "https://logs.plant-a.example:19532";
        description = "The journal-remote server to upload to (systemd-journal-upload `URL=`).";
      };
    };

    alertRules = mkOption {
      type = types.nullOr types.path;
      default = ../ops/prometheus/bsfg-alerts.yaml;
      defaultText = literalExpression "../ops/prometheus/bsfg-alerts.yaml";
      description = ''
        Prometheus alert rules for the zone (every row of the seed's
        monitoring table, the contract's section 9 thresholds). Installed as
        /etc/bsfg/monitoring/alert-rules.yml for a Prometheus server to load;
        this host does not run Prometheus itself. `null`: not installed.
      '';
    };

    grafanaDashboard = mkOption {
      type = types.nullOr types.path;
      default = ../ops/grafana/bsfg-zone.json;
      defaultText = literalExpression "../ops/grafana/bsfg-zone.json";
      description = "Grafana dashboard JSON of one zone, installed as /etc/bsfg/monitoring/dashboard.json for provisioning elsewhere. `null`: not installed.";
    };

    commissioning = mkOption {
      type = types.nullOr (types.submodule {
        options = {
          class = mkOption {
            type = types.str;
            description = "Stream class the commissioning round trip appends to (declare it in the zone's classes).";
          };
          consumer = mkOption {
            type = types.str;
            description = "Consumer that reads it back (source `store:<class>`).";
          };
        };
      });
      default = null;
      example = {
        class = "commissioning";
        consumer = "commissioning";
      };
      description = "The dedicated class and consumer of `bsfgctl commission`'s round trip, written to /etc/bsfg/zone.json.";
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf ocfg.enable {
      services.prometheus.exporters.node = {
        enable = true;
        listenAddress = s.managementAddress;
        port = ocfg.nodeExporterPort;
        # modules/lib/node-exporter.nix: the collectors and flags the alert
        # rules need (the zone simulator runs the same).
        inherit
          (nodeExporter.host {
            settings = s;
            port = ocfg.nodeExporterPort;
          })
          enabledCollectors
          extraFlags
          ;
      };
      services.prometheus.exporters.nats = {
        enable = true;
        listenAddress = s.managementAddress;
        port = ocfg.natsExporterPort;
        url = "http://${s.nats.settings.http}";
        # The exporter needs at least one endpoint flag; the alert rules use
        # gnatsd_varz_jetstream_meta_* and gnatsd_healthz_status.
        extraFlags = ["-varz" "-healthz"];
      };
    })
    (lib.mkIf ocfg.journalUpload.enable {
      services.journald.upload = {
        enable = true;
        settings.Upload.URL = ocfg.journalUpload.url;
      };
    })
    {
      # What bsfgctl expects of this zone (zone status, commission).
      environment.etc."bsfg/zone.json".text = builtins.toJSON (import ./lib/operator.nix {
        inherit (cfg) zone;
        nodeExporterPort =
          if ocfg.enable
          then ocfg.nodeExporterPort
          else null;
        inherit (ocfg) commissioning;
      });
    }
    {
      environment.etc =
        lib.optionalAttrs (ocfg.alertRules != null) {
          "bsfg/monitoring/alert-rules.yml".source = ocfg.alertRules;
        }
        // lib.optionalAttrs (ocfg.grafanaDashboard != null) {
          "bsfg/monitoring/dashboard.json".source = ocfg.grafanaDashboard;
        }
        # The scrape job of gamma's service probe (modules/lib/probe.nix),
        # for the same Prometheus.
        // lib.optionalAttrs (cfg.normalisedZone.probe != null) {
          "bsfg/monitoring/scrape-probe.yml".text = (import ./lib/probe.nix).scrapeConfigText cfg.normalisedZone;
        };
    }
  ]);
}
