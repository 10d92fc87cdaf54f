# flake.nix's outputs evaluated with stand-ins for its inputs (no nixpkgs,
# crane or advisory-db needed): nixpkgs.lib provides the few functions
# flake.nix uses, `nixosSystem` and the crane builders return their
# arguments, and `testers.runNixOSTest` returns the test definition.
# Used by tests/lib/flake-smoke.nix (wiring checks) and by
# scripts/check-nix.sh (it lints the VM tests' assembled test scripts).
let
  flake = import ../../flake.nix;

  stubLib = rec {
    hasSuffix = suffix: s: let
      ls = builtins.stringLength s;
      lx = builtins.stringLength suffix;
    in
      ls >= lx && builtins.substring (ls - lx) lx s == suffix;
    cleanSourceWith = args: {
      _stub = "source";
      inherit (args) name;
    };
    fileset = {
      unions = xs: xs;
      toSource = args: {
        _stub = "fileset";
        inherit (args) fileset;
      };
    };
    nixosSystem = args: {
      _stub = "nixosSystem";
      inherit (args) modules;
      config.system.build.isoImage = {
        _stub = "iso";
        inherit (args) modules;
      };
    };
    genAttrs = names: f:
      builtins.listToAttrs (map (n: {
          name = n;
          value = f n;
        })
        names);
    inherit (builtins) listToAttrs concatStringsSep;
    mkDefault = x: {
      _type = "override";
      priority = 1000;
      content = x;
    };
    mkIf = cond: content: {
      _type = "if";
      condition = cond;
      inherit content;
    };
    mkImageMediaOverride = x: {
      _type = "override";
      priority = 60;
      content = x;
    };
    optional = c: x:
      if c
      then [x]
      else [];
  };

  stubPkgs = let
    named = n: {
      _stub = "package";
      name = n;
    };
  in
    builtins.listToAttrs (map (n: {
      name = n;
      value = named n;
    }) ["cargo-nextest" "cargo-audit" "nats-server" "natscli" "keepalived" "iproute2" "nftables" "openssl" "python3" "nix" "alejandra" "deadnix" "bash" "curl" "jq"])
    // {
      testers.runNixOSTest = test: test // {_stub = "nixos-test";};
      callPackage = fn: args: {
        _stub = "callPackage";
        inherit fn args;
      };
      runCommand = name: env: script: {
        _stub = "runCommand";
        inherit name env script;
      };
    };

  crane = {
    mkLib = _: {
      filterCargoSources = _: _: true;
      buildDepsOnly = args: args // {_stub = "buildDepsOnly";};
      buildPackage = args: args // {_stub = "buildPackage";};
      cargoClippy = args: args // {_stub = "cargoClippy";};
      cargoNextest = args: args // {_stub = "cargoNextest";};
      cargoFmt = args: args // {_stub = "cargoFmt";};
      cargoDoc = args: args // {_stub = "cargoDoc";};
      cargoAudit = args: args // {_stub = "cargoAudit";};
      devShell = args: args // {_stub = "devShell";};
    };
  };

  nixpkgs = {
    lib = stubLib;
    legacyPackages.x86_64-linux = stubPkgs;
  };

  outputs = flake.outputs {
    self = outputs;
    inherit nixpkgs crane;
    advisory-db = "/nix/store/00000000000000000000000000000000-advisory-db";
  };
in {
  inherit outputs;
  lib = stubLib;
}
