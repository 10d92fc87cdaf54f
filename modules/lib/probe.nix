# The service probe of a zone: what gamma's blackbox exporter checks, from
# outside the service hosts, the way producers and peer zones reach the
# zone: the VIP, mutual TLS with a client certificate of its own (the
# zone's `probe.identity`, in no ACL: the controller admits it to the
# health service only), and
#   * gRPC health (`grpc.health.v1.Health/Check` of the BSFG service),
#   * the same check over the Connect protocol (a unary JSON POST),
# each answered SERVING only while the controller may serve (lease held,
# not draining). ONE renderer: modules/services/probe.nix hands `configText`
# to nixpkgs' services.prometheus.exporters.blackbox, the zone simulator runs
# Debian's blackbox exporter on the same text, and the Prometheus scrape
# job (`scrapeConfig`) is shipped with the zone's alert rules.
#
#   host { zone; settings; paths; } -> null (no probe on this host) or
#     { identity; listen = { address; port; }; config; configText; targets; modules; }
#   scrapeConfig zone, scrapeConfigText zone -> Prometheus' scrape job
let
  inherit (builtins) toJSON toString;

  # The module names the scrape job asks for (`module` URL parameter).
  modules = {
    grpc = "bsfg_grpc_health";
    connect = "bsfg_connect_health";
  };

  # The health service's name for the BSFG service (bsfg-proto SERVICE_NAME).
  service = "bsfg.v1.BoundaryService";

  # blackbox_exporter's configuration (the `modules` document of its
  # CONFIGURATION.md): JSON, which its YAML parser reads as is.
  config = {
    tls, # { certificate; privateKey; ca; } as the exporter reads them
    timeoutMs,
  }: let
    tlsConfig = {
      ca_file = tls.ca;
      cert_file = tls.certificate;
      key_file = tls.privateKey;
      # The controller certificate names the VIP as an IP SAN: verified as
      # the address dialled, no server_name needed.
      insecure_skip_verify = false;
    };
    timeout = "${toString timeoutMs}ms";
  in {
    modules = {
      ${modules.grpc} = {
        prober = "grpc";
        inherit timeout;
        grpc = {
          inherit service;
          tls = true;
          tls_config = tlsConfig;
          preferred_ip_protocol = "ip4";
          ip_protocol_fallback = false;
        };
      };
      ${modules.connect} = {
        prober = "http";
        inherit timeout;
        http = {
          method = "POST";
          headers = {
            "Content-Type" = "application/json";
            "Connect-Protocol-Version" = "1";
          };
          body = toJSON {inherit service;};
          valid_status_codes = [200];
          fail_if_not_ssl = true;
          fail_if_body_not_matches_regexp = ["\"status\":\\s*\"SERVING\""];
          no_follow_redirects = true;
          tls_config = tlsConfig;
          preferred_ip_protocol = "ip4";
          ip_protocol_fallback = false;
        };
      };
    };
  };

  # What the probe dials: the VIP and the controller port.
  targets = zone: let
    vip = "${zone.vip.address}:${toString zone.ports.controller}";
  in {
    grpc = vip;
    connect = "https://${vip}/grpc.health.v1.Health/Check";
  };

  # The Prometheus scrape job of the zone's probe (null: the zone has
  # none): one job, one target per check; the `probe` label says which.
  # The module and target travel as URL parameters (__param_*). The
  # exporter cuts each probe to the scrape timeout less 0.5 s: keep
  # scrape_timeout above probe.timeout + 0.5 s (Prometheus' default 10 s is).
  scrapeConfig = zone:
    if zone.probe == null
    then null
    else let
      gamma = zone.hosts.${zone.byRole.gamma};
      t = targets zone;
    in {
      job_name = "bsfg-service-probe";
      metrics_path = "/probe";
      static_configs = map (check: {
        targets = ["${gamma.managementAddress}:${toString zone.ports.probe}"];
        labels = {
          inherit (zone) zone;
          host = gamma.name;
          probe = check;
          __param_module = modules.${check};
          __param_target = t.${check};
        };
      }) ["grpc" "connect"];
    };
in {
  inherit modules service config targets scrapeConfig;

  # The scrape job as a Prometheus configuration file
  # (/etc/bsfg/monitoring/scrape-probe.yml; JSON is YAML).
  scrapeConfigText = zone: toJSON {scrape_configs = [(scrapeConfig zone)];} + "\n";

  host = {
    zone, # the result of `normalise`
    settings, # { name; role; managementAddress; }
    paths, # nixosPaths or simulatorPaths runDir host (its `probe`)
  }:
    if zone.probe == null || settings.role != "gamma"
    then null
    else let
      c = config {
        tls = paths.probe;
        inherit (zone.probe) timeoutMs;
      };
    in {
      inherit (zone.probe) identity;
      listen = {
        address = settings.managementAddress;
        port = zone.ports.probe;
      };
      targets = targets zone;
      # check -> the `module` parameter of /probe (what Prometheus asks).
      inherit modules;
      config = c;
      configText = toJSON c + "\n";
    };
}
