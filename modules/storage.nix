# The seed's canonical mounts ("Canonical Mount Intent"):
#   /data/jetstream  all hosts      JetStream durable data (dedicated NVMe)
#   /artifacts       alpha, beta    artifact storage of the active controller host
#   /opt/bsfg        all hosts      configuration, scripts, deployment artifacts
# The hosts fill in devices (hosts/<host>/default.nix); a mount without a
# device is a directory on the root file system, or whatever fileSystems
# mounts there (a VM test's virtualisation.fileSystems), which is a choice,
# not a mistake: the only warning is for two storage classes given one device.
#
# /opt/bsfg/deployment is this host's rendered deployment, for operators to
# read and diff between generations: every file and unit modules/lib
# renders for it (keepalived.conf, nats.json, the TOMLs, the polkit rule,
# the unit files) plus the zone description as JSON. The running daemons
# read /etc/bsfg and the Nix store, never this copy.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption types;
  cfg = config.services.bsfg;
  s = cfg.settings;
  isService = s.runs.artifacts;

  deployment = pkgs.linkFarm "bsfg-deployment-${cfg.hostName}" (
    [
      {
        name = "nats.json";
        path = pkgs.writeText "nats.json" s.nats.configText;
      }
      {
        name = "zone.json";
        path = pkgs.writeText "zone.json" (builtins.toJSON cfg.normalisedZone);
      }
    ]
    ++ lib.optionals isService [
      {
        name = "keepalived.conf";
        path = pkgs.writeText "keepalived.conf" s.keepalived.configText;
      }
      {
        name = "controller.toml";
        path = pkgs.writeText "controller.toml" s.controller.configText;
      }
      {
        name = "gate-agent.toml";
        path = pkgs.writeText "gate-agent.toml" s.gateAgent.configText;
      }
      {
        name = "polkit-bsfg.rules";
        path = pkgs.writeText "polkit-bsfg.rules" s.polkitRule;
      }
    ]
    ++ map (u: {
      name = "units/${u.name}";
      path = pkgs.writeText u.name u.text;
    }) (lib.filter (u: u ? text) (builtins.attrValues s.units))
  );

  mountOptions = purpose: example: {
    device = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = example;
      description = "Block device (or label/UUID path) mounted for ${purpose}. `null`: no mount, a directory on the root file system.";
    };
    fsType = mkOption {
      type = types.str;
      default = "ext4";
      example = "xfs";
      description = "File system type of the ${purpose} mount.";
    };
    options = mkOption {
      type = types.listOf types.str;
      default = ["noatime"];
      example = ["noatime" "nofail"];
      description = "Mount options of the ${purpose} mount.";
    };
  };

  mounts =
    [
      {
        path = s.paths.jetstream;
        opts = cfg.storage.jetstream;
      }
      {
        path = s.paths.opt;
        opts = cfg.storage.opt;
      }
    ]
    ++ lib.optional isService {
      path = s.paths.artifacts;
      opts = cfg.storage.artifacts;
    };
in {
  options.services.bsfg.storage = {
    jetstream = mountOptions "JetStream data (/data/jetstream)" "/dev/disk/by-label/jetstream";
    artifacts = mountOptions "artifact storage (/artifacts, alpha and beta only)" "/dev/disk/by-label/artifacts";
    opt = mountOptions "/opt/bsfg" "/dev/disk/by-label/bsfg-opt";
  };

  config = lib.mkIf cfg.enable {
    fileSystems = lib.listToAttrs (map (m: {
      name = m.path;
      value = {
        inherit (m.opts) device fsType options;
      };
    }) (lib.filter (m: m.opts.device != null) mounts));

    warnings = let
      withDevice = lib.filter (m: m.opts.device != null) mounts;
      shared = lib.filter (m: lib.any (o: o.path != m.path && o.opts.device == m.opts.device) withDevice) withDevice;
    in
      lib.optional (shared != [])
      "services.bsfg.storage: ${lib.concatMapStringsSep " and " (m: m.path) shared} are on the same device (${(builtins.head shared).opts.device}); the seed keeps JetStream data, artifacts and /opt/bsfg on separate volumes so that one filling up or failing does not take the others with it.";

    # Power loss (docs/durability.md): nats-server never fsyncs the
    # directories it creates, so JetStream needs a file system whose fsync of
    # a file also commits its new names (a metadata journal), and no mount
    # may turn off write barriers (the disk would reorder or drop what an
    # fsync promised).
    assertions =
      map (m: {
        assertion = m.opts.device == null || builtins.elem m.opts.fsType ["ext4" "xfs" "btrfs"];
        message = "services.bsfg.storage: ${m.path} has fsType ${m.opts.fsType}; use ext4, xfs or btrfs (a journaling file system: nats-server relies on it to keep new streams through a power loss, see docs/durability.md).";
      }) (lib.filter (m: m.path == s.paths.jetstream) mounts)
      ++ map (m: {
        assertion = !(builtins.elem "nobarrier" m.opts.options || builtins.elem "barrier=0" m.opts.options);
        message = "services.bsfg.storage: ${m.path} is mounted with write barriers off (${builtins.concatStringsSep "," m.opts.options}); remove nobarrier/barrier=0: a power loss would lose what fsync acknowledged.";
      })
      mounts
      ++ [
        {
          # Gamma never holds artifacts (seed "Storage Classes"): no mount, no directory.
          assertion = isService || (cfg.storage.artifacts.device == null && !(config.fileSystems ? ${s.paths.artifacts}));
          message = "services.bsfg: ${cfg.hostName} has role ${cfg.role} and must not have artifact storage; remove services.bsfg.storage.artifacts.device and fileSystems.\"${s.paths.artifacts}\".";
        }
        {
          # The layout mirrors the ESP on MD RAID1 (metadata 1.0): bootctl
          # cannot install systemd-boot onto it (disko's own boot-raid1
          # test turns systemd-boot off for that reason); GRUB writes the
          # removable-media path, which the firmware finds on either disk.
          assertion = s.installDisks == [] || !(config.boot.loader.systemd-boot.enable or false);
          message = "services.bsfg.storage: hosts.${cfg.hostName}.disks puts /boot on an MD RAID1, where systemd-boot cannot be installed; in hosts/${cfg.hostName}/hardware.nix set boot.loader.systemd-boot.enable = false; boot.loader.efi.canTouchEfiVariables = false; boot.loader.grub = { enable = true; efiSupport = true; efiInstallAsRemovable = true; device = \"nodev\"; };";
        }
      ];

    # A host installed with its role's disk layout (hosts.<name>.disks,
    # modules/lib/disks.nix) boots from MD RAID1: assemble the arrays in
    # stage 1. mdadm's monitor needs somewhere to report a failed member.
    boot.swraid = lib.mkIf (s.installDisks != []) {
      enable = true;
      mdadmConf = "MAILADDR root";
    };

    # Ownership of the mount points, applied after the mounts are up.
    users.groups.bsfg-artifacts = lib.mkIf isService {};
    systemd.tmpfiles.rules =
      [
        "d ${s.paths.opt} 0755 root root -"
        "L+ ${s.paths.opt}/deployment - - - - ${deployment}"
      ]
      # setgid group bsfg-artifacts: the controller writes blobs, the gate
      # agent probes that the mount is writable.
      ++ lib.optional isService "d ${s.paths.artifacts} 2770 bsfg-controller bsfg-artifacts -";
  };
}
