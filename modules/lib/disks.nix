# Disk layouts per role, as disko's `disko.devices` (nix-community/disko,
# the pinned input; option names from its lib/types/{disk,gpt,mdadm,mdraid,
# filesystem}.nix and example/boot-raid1.nix): the system on a RAID1 of two
# disks (a mirrored ESP with metadata 1.0, so firmware reads either half as
# FAT, and the root file system), JetStream on a disk of its own (the
# seeds' NVMe) at /data/jetstream, and on alpha and beta the artifact store
# on a RAID1 of two disks at /artifacts. Pure: the devices come from the
# zone description (hosts.<name>.disks); null means the host's disks are
# partitioned by hand (hardware.nix).
#
#   normalise { where; role; disks; }  -> null | { system; jetstream; artifacts; }
#   layout disks                       -> disko.devices
#   declared disks                     -> every device path the layout may touch
#   uses disks                         -> [ { device; use; group; minBytes; } ]: what
#                                         the installer shows and checks per disk
let
  inherit (builtins) attrNames concatStringsSep elem filter isAttrs isList isString length toJSON;
  fail = msg: throw "zone: ${msg}";
  get = attrs: name: default:
    if attrs ? ${name}
    then attrs.${name}
    else default;
  isDevice = d: isString d && builtins.match "/dev/[A-Za-z0-9._:/+-]+" d != null;
  known = ["system" "jetstream" "artifacts"];
  duplicates = l: filter (x: length (filter (y: y == x) l) > 1) l;
in rec {
  normalise = {
    where, # "hosts.alpha.disks"
    role,
    disks,
  }: let
    system = get disks "system" null;
    jetstream = get disks "jetstream" null;
    artifacts = get disks "artifacts" null;
    service = elem role ["alpha" "beta"];
    unknown = filter (k: !(elem k known)) (attrNames disks);
    pair = v: isList v && length v == 2 && builtins.all isDevice v;
    all' =
      system
      ++ [jetstream]
      ++ (
        if artifacts == null
        then []
        else artifacts
      );
  in
    if disks == null
    then null
    else if !(isAttrs disks)
    then fail "${where} must be an attribute set: { system = [ \"/dev/disk/by-id/…\" \"/dev/disk/by-id/…\" ]; jetstream = \"/dev/disk/by-id/nvme-…\"; artifacts = [ … ]; } or null"
    else if unknown != []
    then fail "unknown setting(s) ${concatStringsSep ", " (map (k: "${where}.${k}") unknown)}; known: ${concatStringsSep ", " (map (k: "${where}.${k}") known)}"
    else if !(pair system)
    then fail "${where}.system = ${toJSON system} must be two device paths (/dev/disk/by-id/… is stable across boots): the system is a RAID1"
    else if !(isDevice jetstream)
    then fail "${where}.jetstream = ${toJSON jetstream} must be one device path (the NVMe for /data/jetstream)"
    else if service && !(pair artifacts)
    then fail "${where}.artifacts = ${toJSON artifacts} must be two device paths on a ${role} host: /artifacts is a RAID1"
    else if !service && artifacts != null
    then fail "${where}.artifacts is set on a gamma host, which keeps no artifacts; remove it"
    else if duplicates all' != []
    then fail "${where}: ${builtins.head (duplicates all')} is given twice; every disk has one use"
    else {inherit system jetstream artifacts;};

  declared = d:
    d.system
    ++ [d.jetstream]
    ++ (
      if d.artifacts == null
      then []
      else d.artifacts
    );

  # What each declared disk becomes, for the installer's plan: `group`
  # names a RAID1 (its two members should be of one size) and `minBytes`
  # is the least a disk of that use can hold (the system: the 1 GiB ESP
  # and a NixOS closure with room for a few generations).
  uses = d: let
    gib = n: n * 1024 * 1024 * 1024;
    one = group: minBytes: use: device: {inherit device use group minBytes;};
  in
    map (one "system" (gib 16) "system RAID1 member: ESP (1 GiB, vfat, mirrored) and / (ext4)") d.system
    ++ [(one "jetstream" (gib 8) "/data/jetstream (ext4, the whole disk)" d.jetstream)]
    ++ (
      if d.artifacts == null
      then []
      else map (one "artifacts" (gib 8) "artifacts RAID1 member: /artifacts (ext4)") d.artifacts
    );

  # One member disk of a RAID1: a GPT with the partitions given.
  member = device: partitions: {
    type = "disk";
    inherit device;
    content = {
      type = "gpt";
      inherit partitions;
    };
  };
  raidMember = name: {
    size = "100%";
    content = {
      type = "mdraid";
      inherit name;
    };
  };
  # Each file system gets the label the hosts mount it by (placeholder
  # hardware.nix: nixos, ESP; services.bsfg.storage: jetstream, artifacts),
  # so the NixOS configuration needs nothing of disko's module.
  labels = {
    "/" = "nixos";
    "/boot" = "ESP";
    "/data/jetstream" = "jetstream";
    "/artifacts" = "artifacts";
  };
  ext4 = mountpoint: {
    type = "filesystem";
    format = "ext4";
    inherit mountpoint;
    extraArgs = ["-L" labels.${mountpoint}];
    mountOptions = ["noatime"];
  };

  layout = d: let
    systemDisk = device:
      member device {
        ESP = {
          size = "1G";
          type = "EF00";
          content = {
            type = "mdraid";
            name = "boot";
          };
        };
        system = raidMember "system";
      };
  in {
    disk =
      {
        system0 = systemDisk (builtins.elemAt d.system 0);
        system1 = systemDisk (builtins.elemAt d.system 1);
        jetstream = member d.jetstream {
          jetstream = {
            size = "100%";
            content = ext4 "/data/jetstream";
          };
        };
      }
      // (
        if d.artifacts == null
        then {}
        else {
          artifacts0 = member (builtins.elemAt d.artifacts 0) {artifacts = raidMember "artifacts";};
          artifacts1 = member (builtins.elemAt d.artifacts 1) {artifacts = raidMember "artifacts";};
        }
      );
    mdadm =
      {
        boot = {
          type = "mdadm";
          level = 1;
          metadata = "1.0";
          content = {
            type = "filesystem";
            format = "vfat";
            extraArgs = ["-n" labels."/boot"];
            mountpoint = "/boot";
            mountOptions = ["umask=0077"];
          };
        };
        system = {
          type = "mdadm";
          level = 1;
          content = ext4 "/";
        };
      }
      // (
        if d.artifacts == null
        then {}
        else {
          artifacts = {
            type = "mdadm";
            level = 1;
            content = ext4 "/artifacts";
          };
        }
      );
  };
}
