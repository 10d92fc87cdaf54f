# What the installer image of one host tells `bsfgctl install run`
# (/etc/bsfg/install.json on the image): the host, the disks the role's
# layout partitions (as the zone declares them, as the disko layout names
# them, and what each becomes), and the files to place on the host before
# its first boot: every LoadCredential= source of its units, the secrets
# among them as `secretPaths` names them, the keys among those as the
# certificate plan (modules/lib/pki.nix) installs them. Pure; modules/installer.nix adds
# the store paths of the host's system and of disko's script.
#
#   manifest { zone; settings; } -> { host; role; zone; disks; layout; mountPoint; files; }
#     zone:     the zone description as written (for the secrets' option names)
#     settings: hostSettings of the host (modules/lib/zone.nix)
let
  inherit (builtins) attrValues baseNameOf concatMap elem filter foldl' head isAttrs listToAttrs match;
  zoneLib = import ./zone.nix;
  pki = import ./pki.nix;

  # "name:path" -> path
  credentialPath = c: let
    m = match "[^:]+:(.*)" c;
  in
    if m == null
    then c
    else head m;
  unique = foldl' (acc: x:
    if elem x acc
    then acc
    else acc ++ [x]) [];
in {
  manifest = {
    zone,
    settings,
  }: let
    secrets = listToAttrs (map (s: {
      name = s.path;
      value = s.option;
    }) (zoneLib.secretPaths zone));
    # Every file `bsfgctl pki issue` writes on this host (the certificate
    # plan, as modules/lib/operator.nix hands it to bsfgctl).
    z = zoneLib.normalise zone;
    issue = pki.plan {
      zone = z;
      installsFor = pki.applianceInstalls z;
    };
    issued =
      map (i: i.path) (filter (i: i.host == settings.name) issue.ca.installs)
      ++ concatMap (c:
        concatMap (i:
          if i.host == settings.name
          then [i.certificate i.privateKey]
          else [])
        c.installs)
      issue.certificates;
    units = filter isAttrs (attrValues settings.units);
    paths = unique (concatMap (u: map credentialPath (u.serviceConfig.LoadCredential or [])) units);
    file = path:
      if !(secrets ? ${path})
      then {
        inherit path;
        secret = false;
        option = null;
        mode = "0644";
        createdBy = "bsfgctl pki issue";
      }
      else if elem path issued
      then {
        inherit path;
        secret = true;
        option = secrets.${path};
        mode = "0600";
        createdBy = "bsfgctl pki issue";
      }
      else {
        inherit path;
        secret = true;
        option = secrets.${path};
        mode = "0400";
        createdBy = "head -c 32 /dev/urandom | base64 > ${baseNameOf path}";
      };
  in {
    host = settings.name;
    inherit (settings) role;
    inherit (z) zone;
    # disko mounts the new system here; nixos-install installs into it.
    mountPoint = "/mnt";
    disks = settings.installDiskUses;
    layout =
      if settings.disko == null
      then []
      else map (d: d.device) (attrValues settings.disko.disk);
    files = map file paths;
  };
}
