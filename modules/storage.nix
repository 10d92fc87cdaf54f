# The seed's canonical mounts ("Canonical Mount Intent"):
#   /data/jetstream  all hosts      JetStream durable data (dedicated NVMe)
#   /artifacts       alpha, beta    artifact storage of the active controller host
#   /opt/bsfg        all hosts      configuration, scripts, deployment artifacts
# The hosts fill in devices (hosts/<host>/hardware.nix); a mount without a
# device stays a plain directory on the root file system, with a warning.
{
  config,
  lib,
  ...
}: let
  inherit (lib) mkOption types;
  cfg = config.services.bsfg;
  s = cfg.settings;
  isService = s.runs.artifacts;

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

    warnings =
      map (m: "services.bsfg.storage: ${m.path} has no device; it is a directory on the root file system. Set the device in hosts/<host>/hardware.nix for a real appliance.")
      (lib.filter (m: m.opts.device == null) mounts);

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
      ];

    # Ownership of the mount points, applied after the mounts are up.
    users.groups.bsfg-artifacts = lib.mkIf isService {};
    systemd.tmpfiles.rules =
      [
        "d ${s.paths.opt} 0755 root root -"
      ]
      # setgid group bsfg-artifacts: the controller writes blobs, the gate
      # agent probes that the mount is writable.
      ++ lib.optional isService "d ${s.paths.artifacts} 2770 bsfg-controller bsfg-artifacts -";
  };
}
