# Renders keepalived.conf text from the computed VRRP settings of one host.
#
# The NixOS module does NOT use this text: it feeds the same values to
# nixpkgs' services.keepalived (vrrpInstances, vrrpScripts, extraGlobalDefs,
# extraConfig), which renders them itself. This renderer exists for the zone
# simulator, which runs keepalived outside NixOS; it produces the blocks in
# the same shape as nixpkgs' module (see modules/services/keepalived.nix and
# docs/nixpkgs-options-checked.md), so a drill exercises the same VRRP
# configuration the appliance runs. Both sides are built from the same
# attribute set, so the values cannot drift.
let
  inherit (builtins) concatStringsSep toString;

  quoteArgv = argv: concatStringsSep " " argv;

  # Lines that go into keepalived's global_defs block.
  globalDefs = k: [
    "vrrp_version ${toString k.version}"
    # The gate agent reads state transitions from this FIFO (keepalived
    # writes `INSTANCE "<name>" MASTER|BACKUP|FAULT <priority>` lines).
    "notify_fifo ${k.notifyFifo}"
  ];

  # Top-level blocks besides the instance and the script.
  trackFileBlock = k: ''
    track_file ${k.trackFile.name} {
      file "${k.trackFile.path}"
      weight ${toString k.trackFile.weight}
    }
  '';

  # Lines that go inside the vrrp_instance block beyond what nixpkgs'
  # vrrpInstances options cover (keepalivedConf below writes the same lines).
  instanceExtra = k: ''
    advert_int ${k.advertInterval}
    track_file {
      ${k.trackFile.name} weight ${toString k.trackFile.weight}
    }
  '';

  keepalivedConf = k: ''
    global_defs {
      enable_script_security
      ${concatStringsSep "\n  " (globalDefs k)}
    }

    vrrp_script ${k.checkScript.name} {
      script "${quoteArgv k.checkScript.argv}"
      interval ${toString k.checkScript.interval}
      fall ${toString k.checkScript.fall}
      rise ${toString k.checkScript.rise}
      timeout ${toString k.checkScript.timeout}
      weight ${toString k.checkScript.weight}
      user ${k.checkScript.user}
    }

    ${trackFileBlock k}
    vrrp_instance ${k.instance} {
      interface ${k.interface}
      state ${k.state}
      virtual_router_id ${toString k.virtualRouterId}
      priority ${toString k.priority}
      ${
      if k.noPreempt
      then "nopreempt"
      else ""
    }
      unicast_src_ip ${k.unicastSrcIp}
      unicast_peer {
        ${concatStringsSep "\n    " k.unicastPeers}
      }
      virtual_ipaddress {
        ${k.vip.address}/${toString k.vip.prefixLength} dev ${k.vip.interface}
      }
      track_script {
        ${k.checkScript.name}
      }
      advert_int ${k.advertInterval}
      track_file {
        ${k.trackFile.name} weight ${toString k.trackFile.weight}
      }
    }
  '';
in {
  inherit keepalivedConf globalDefs trackFileBlock instanceExtra quoteArgv;
}
