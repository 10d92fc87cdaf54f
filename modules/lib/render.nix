# The files the appliance deploys, as text, from the computed settings of
# one host. ONE renderer: the NixOS modules hand these texts (or the parts
# nixpkgs assembles them from) to nixpkgs, and the zone simulator writes the
# same texts; tests/lib/module-smoke.nix proves, per host, that what the
# modules hand to nixpkgs reproduces these bytes.
let
  inherit (builtins) attrNames concatStringsSep isBool isList toJSON toString;

  # ------------------------------------------------------------ keepalived

  # How nixpkgs' services.keepalived writes keepalived.conf (checked against
  # nixos/modules/services/networking/keepalived/default.nix): a global_defs
  # block with `enable_script_security` (enableScriptSecurity), the SNMP
  # lines (SNMP off: empty) and extraGlobalDefs, each on a line indented by
  # two spaces; a blank line; the vrrp_script blocks (vrrpScripts); the
  # vrrp_instance blocks (vrrpInstances); extraConfig; a final newline.
  # Keepalived resolves a track_file or vrrp_script while it parses the
  # instance that names it, so both must come before the instance: the
  # appliance therefore leaves vrrpScripts and vrrpInstances empty and puts
  # script, track file and instance, in that order, into extraConfig.
  nixpkgsKeepalivedConf = {
    enableScriptSecurity,
    extraGlobalDefs,
    extraConfig,
  }:
    "global_defs {\n  "
    + (
      if enableScriptSecurity
      then "enable_script_security"
      else ""
    )
    + "\n  \n  "
    + extraGlobalDefs
    + "\n}\n\n\n\n"
    + extraConfig
    + "\n";

  quoteArgv = argv: concatStringsSep " " argv;

  indent = prefix: lines: concatStringsSep "" (map (l: "${prefix}${l}\n") lines);

  block = header: lines: "${header} {\n${indent "  " lines}}\n";

  # The instance's body; `trackProcesses` names vrrp_track_process blocks
  # (empty unless the settings list some).
  instanceLines = k:
    [
      "interface ${k.interface}"
      "state ${k.state}"
      "virtual_router_id ${toString k.virtualRouterId}"
      "priority ${toString k.priority}"
      "advert_int ${k.advertInterval}"
    ]
    ++ (
      if k.noPreempt
      then ["nopreempt"]
      else []
    )
    ++ [
      "unicast_src_ip ${k.unicastSrcIp}"
      "unicast_peer {"
    ]
    ++ map (p: "  ${p}") k.unicastPeers
    ++ [
      "}"
      "virtual_ipaddress {"
      "  ${k.vip.address}/${toString k.vip.prefixLength} dev ${k.vip.interface}"
      "}"
      "track_script {"
      "  ${k.checkScript.name}"
      "}"
      "track_file {"
      "  ${k.trackFile.name} weight ${toString k.trackFile.weight}"
      "}"
    ]
    ++ (
      if k.trackProcesses == []
      then []
      else ["track_process {"] ++ map (p: "  ${p.name}") k.trackProcesses ++ ["}"]
    );

  # What the appliance hands to nixpkgs' services.keepalived.
  keepalivedParts = k: {
    enableScriptSecurity = true;
    extraGlobalDefs = concatStringsSep "\n  " [
      "vrrp_version ${toString k.version}"
      # The gate agent reads state transitions from this FIFO (keepalived
      # writes `INSTANCE "<name>" MASTER|BACKUP|FAULT <priority>` lines).
      "notify_fifo ${k.notifyFifo}"
    ];
    extraConfig = concatStringsSep "\n" (
      [
        (block "vrrp_script ${k.checkScript.name}" [
          "script \"${quoteArgv k.checkScript.argv}\""
          "interval ${toString k.checkScript.interval}"
          "timeout ${toString k.checkScript.timeout}"
          "fall ${toString k.checkScript.fall}"
          "rise ${toString k.checkScript.rise}"
          "weight ${toString k.checkScript.weight}"
          "user ${k.checkScript.user}"
        ])
        (block "track_file ${k.trackFile.name}" [
          "file \"${k.trackFile.path}\""
          "weight ${toString k.trackFile.weight}"
        ])
      ]
      ++ map (p:
        block "vrrp_track_process ${p.name}" [
          "process \"${p.process}\""
          "param_match ${p.paramMatch}"
          "quorum 1"
          "delay ${toString p.delay}"
          "weight 0"
        ])
      k.trackProcesses
      ++ [(block "vrrp_instance ${k.instance}" (instanceLines k))]
    );
  };

  keepalivedConf = k: nixpkgsKeepalivedConf (keepalivedParts k);

  # ------------------------------------------------------------ polkit

  # The gate agent may run exactly these systemd verbs on the controller
  # unit, nothing else (nixpkgs: security.polkit.extraConfig).
  polkitRule = {
    user,
    unit,
    verbs,
  }: ''
    // services.bsfg: the gate agent starts and stops the controller, nothing else.
    polkit.addRule(function (action, subject) {
      if (action.id == "org.freedesktop.systemd1.manage-units" &&
          subject.user == ${toJSON user} &&
          action.lookup("unit") == ${toJSON unit}) {
        var verb = action.lookup("verb");
        if (${concatStringsSep " || " (map (v: "verb == ${toJSON v}") verbs)}) {
          return polkit.Result.YES;
        }
      }
    });
  '';
  # ------------------------------------------------------------ systemd

  # A complete unit file from the attributes NixOS' systemd.services.<name>
  # takes (description, wants, after, unitConfig, serviceConfig, wantedBy);
  # a list value becomes one line per element, as systemd merges them.
  value = v:
    if isBool v
    then
      (
        if v
        then "true"
        else "false"
      )
    else toString v;
  section = name: attrs:
    "[${name}]\n"
    + concatStringsSep "" (map (k: let
      v = attrs.${k};
    in
      if isList v
      then concatStringsSep "" (map (x: "${k}=${value x}\n") v)
      else "${k}=${value v}\n") (attrNames attrs));

  unitFile = u:
    section "Unit" (
      {Description = u.description;}
      // (
        if u.wants == []
        then {}
        else {Wants = concatStringsSep " " u.wants;}
      )
      // (
        if u.after == []
        then {}
        else {After = concatStringsSep " " u.after;}
      )
      // u.unitConfig
    )
    + "\n"
    + section "Service" u.serviceConfig
    + (
      if u.wantedBy == []
      then ""
      else "\n" + section "Install" {WantedBy = concatStringsSep " " u.wantedBy;}
    );
in {
  inherit section unitFile;
  inherit keepalivedConf keepalivedParts nixpkgsKeepalivedConf polkitRule quoteArgv;
  toml = (import ./toml.nix).render;
  # nats-server reads JSON configuration files.
  json = toJSON;
}
