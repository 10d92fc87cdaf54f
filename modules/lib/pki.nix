# The zone's certificate plan: every certificate the zone needs, computed from
# the zone description, and where each one is installed on which host.
# `bsfgctl pki` issues it (modules/lib/operator.nix puts it into zone.json);
# the simulator issues the same plan with its own paths (simulator.nix).
#
#   plan { zone = normalised; installsFor = host -> { controller; natsRoute; }; }
#
# installsFor host: the files of that host, each { certificate; privateKey; ca; }
# (`probe`: gamma's service probe, read only when the zone has one;
# `ca` is the trust bundle every verifier reads: the zone CA, and the old
# and the new one during `bsfgctl pki rollover`)
# (the appliance: the `certificates` paths of the description, the same on
# every host; the simulator: lib.simulatorPaths).
let
  inherit (builtins) attrNames attrValues concatMap filter sort listToAttrs;
  uniq = l:
    attrNames (listToAttrs (map (n: {
        name = n;
        value = null;
      })
      l));
in {
  # The appliance's installs: the description's `certificates` paths, the
  # same on every host (what `bsfgctl pki issue` writes).
  applianceInstalls = zone: _: {
    controller = {inherit (zone.certificates) certificate privateKey ca;};
    natsRoute = {
      certificate = zone.certificates.natsRouteCertificate;
      privateKey = zone.certificates.natsRoutePrivateKey;
      inherit (zone.certificates) ca;
    };
    probe = {
      inherit (zone.probe) certificate privateKey;
      inherit (zone.certificates) ca;
    };
  };

  plan = {
    zone,
    installsFor,
  }: let
    byRole = zone.byRole;
    service = [byRole.alpha byRole.beta];
    host = name: zone.hosts.${name};
    routeIdentity = (import ./nats.nix).routeIdentity zone;
    # Every identity an ACL of the controller names: producers, readers,
    # bucket users, the operator, peer zones that pull from this one.
    clients = uniq (filter (i: i != "*") (
      concatMap (c: c.append) (attrValues zone.classes)
      ++ concatMap (c: c.allowed) (attrValues zone.consumers)
      ++ concatMap (b: b.read ++ b.write) (attrValues zone.buckets)
    ));
  in {
    zone = zone.zone;
    ca = {
      commonName = "${zone.zone} zone CA";
      installs = map (h: {
        host = h;
        path = (installsFor h).controller.ca;
      }) (sort (a: b: a < b) (attrNames zone.hosts));
    };
    certificates =
      [
        {
          name = "controller";
          commonName = zone.certificates.controllerIdentity;
          dnsNames = [zone.certificates.controllerIdentity];
          # Clients dial the VIP; the agents and commissioning dial each
          # service host's own address.
          ipAddresses = [zone.vip.address] ++ map (h: (host h).address) service;
          usage = "serverAndClient";
          installs = map (h: {host = h;} // (installsFor h).controller) service;
        }
      ]
      ++ map (h: {
        name = "nats-route-${h}";
        commonName = routeIdentity;
        # nats-server admits a route by the DNS SAN (verify_and_map) and the
        # dialling server verifies the IP SAN.
        dnsNames = [routeIdentity];
        ipAddresses = [(host h).address];
        usage = "serverAndClient";
        installs = [({host = h;} // (installsFor h).natsRoute)];
      }) (sort (a: b: a < b) (attrNames zone.hosts))
      ++ map (id: {
        name = "client-${id}";
        commonName = id;
        dnsNames = [id];
        ipAddresses = [];
        usage = "client";
        installs = [];
      })
      clients
      # The service probe's client identity, on gamma: in no ACL, so the
      # controller admits it to the health service only.
      ++ (
        if zone.probe == null
        then []
        else [
          {
            name = "probe";
            commonName = zone.probe.identity;
            dnsNames = [zone.probe.identity];
            ipAddresses = [];
            usage = "client";
            installs = [({host = byRole.gamma;} // (installsFor byRole.gamma).probe)];
          }
        ]
      );
  };
}
