# The BSFG controller unit on alpha and beta.
#
# Contract section 7 and the seed's "Failover Contract": the controller is
# NEVER started by boot or by generic service auto-start, only by the gate
# agent after every promotion gate holds. The unit (modules/lib/units.nix)
# has no wantedBy, Restart=no and restartIfChanged = false (a
# `nixos-rebuild switch` must not restart it behind the agent's back; new
# configuration takes effect at the next promotion). An assertion checks the
# whole configuration: no unit, timer, socket or path may pull it in.
#
# Certificates arrive via LoadCredential= (read by systemd as root from the
# paths in the zone description, never copied into the Nix store), and so
# does the NATS system user's password when the zone sets nats.systemUser.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.bsfg;
  s = cfg.settings;
  zoneLib = import ../lib/zone.nix;
  unitName = "bsfg-controller";
  u = s.units.${unitName} or null;
  # Never build a host whose controller would refuse its configuration.
  configFile = import ./checked-config.nix {inherit lib pkgs;} {
    name = "bsfg-controller";
    text = s.controller.configText;
    validate = cfg.validateConfig;
    package = cfg.packages.controller;
    exe = "bsfg-controller";
    checkArgs = ["--check-config"];
  };

  # Every way a unit can be started by another one at boot or on its own:
  # requirement dependencies of other units (systemd.{services,targets,
  # sockets,timers,paths}.*.{wants,requires,upholds,bindsTo} and the same
  # directives in unitConfig), the unit's own reverse dependencies, and
  # timers, paths and sockets that activate it.
  controllerName = zoneLib.controllerUnit;
  names = x:
    if builtins.isList x
    then lib.concatMap names x
    else if builtins.isString x
    then lib.filter (n: n != "") (lib.splitString " " x)
    else [];
  forwardDeps = unit:
    lib.concatMap (a: names (unit.${a} or [])) ["wants" "requires" "upholds" "bindsTo"]
    ++ lib.concatMap (a: names (unit.unitConfig.${a} or [])) ["Wants" "Requires" "Upholds" "BindsTo"];
  activates = kind: unit:
    {
      timers = names (unit.timerConfig.Unit or []);
      paths = names (unit.pathConfig.Unit or []);
      sockets = names (unit.socketConfig.Service or []);
    }
    .${
      kind
    }
    or [];
  # A timer, socket or path unit named bsfg-controller activates the service
  # of that name without saying so.
  implicit = kind: name: builtins.elem kind ["timers" "sockets" "paths"] && name == unitName;
  pullsIn = kind: name: unit: builtins.elem controllerName (forwardDeps unit ++ activates kind unit) || implicit kind name;
  pullers = lib.concatMap (kind:
    lib.concatLists (lib.mapAttrsToList (name: unit: lib.optional (pullsIn kind name unit) "systemd.${kind}.${name}")
      (config.systemd.${kind} or {})))
  ["services" "targets" "sockets" "timers" "paths"];
  unit = config.systemd.services.${unitName} or null;
  reverse = lib.optionals (unit != null) (lib.concatMap (a: lib.optional ((unit.${a} or []) != []) "systemd.services.${unitName}.${a}") ["wantedBy" "requiredBy" "upheldBy"]);
  startedBy = reverse ++ pullers;
in {
  config = lib.mkIf cfg.enable (lib.mkMerge [
    (lib.mkIf s.runs.controller {
      environment.etc."bsfg/controller.toml".source = configFile;

      users.users.${zoneLib.controllerUser} = {
        isSystemUser = true;
        group = zoneLib.controllerUser;
        extraGroups = [zoneLib.artifactsGroup];
        description = "BSFG zone controller";
      };
      users.groups.${zoneLib.controllerUser} = {};

      systemd.services.${unitName} = {
        inherit (u) description wants after unitConfig serviceConfig restartIfChanged;
        restartTriggers = [configFile];
      };
    })
    {
      assertions = [
        {
          # Seed: "The BSFG controller must not be independently enabled for
          # unconditional boot-time start".
          assertion = startedBy == [];
          message = "services.bsfg: ${controllerName} must be started by bsfg-gate-agent only (contract section 7), but ${lib.concatStringsSep ", " startedBy} would start it. Remove ${controllerName} from those options.";
        }
        {
          # Gamma is "physically incapable of becoming active controller".
          assertion = s.runs.controller || unit == null;
          message = "services.bsfg: ${cfg.hostName} has role ${cfg.role}; it must not have a ${unitName} unit (only alpha and beta may run the controller).";
        }
      ];
    }
  ]);
}
