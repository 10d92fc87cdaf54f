# flake.nix's outputs evaluated with stand-ins for its inputs (no nixpkgs,
# crane, advisory-db or disko needed): nixpkgs.lib provides the few functions
# flake.nix uses, `nixosSystem` and the crane builders return their
# arguments, and `testers.runNixOSTest` returns the test definition.
# Two stand-ins are faithful, because checks compute real file lists with
# them: crane's filterCargoSources (transcribed from ipetkov/crane
# lib/filterCargoSources.nix: keep directories, `*.rs`, `*.toml`,
# `Cargo.lock`, `.cargo/config`) and lib.fileset.unions/toSource (which
# keep the listed files and directories, recursively).
# Used by tests/lib/flake-smoke.nix (wiring checks) and by
# scripts/check-nix.sh and scripts/check-crane-source.sh (the VM tests'
# assembled scripts, the zone-lib fileset, the crane source filter).
let
  flake = import ../../flake.nix;

  stubLib = rec {
    hasSuffix = suffix: s: let
      ls = builtins.stringLength s;
      lx = builtins.stringLength suffix;
    in
      ls >= lx && builtins.substring (ls - lx) lx s == suffix;
    hasInfix = infix: s: builtins.match ".*${builtins.replaceStrings ["." "/"] ["[.]" "[/]"] infix}.*" s != null;
    # The filter is kept: scripts/check-crane-source.sh applies it.
    cleanSourceWith = args: {
      _stub = "source";
      inherit (args) name src filter;
    };
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p.name}/bin") ps);
    getExe' = p: exe: "${p.name or "pkg"}/bin/${exe}";
    sourceTypes.binaryNativeCode = "binaryNativeCode";
    fileset = {
      unions = xs: xs;
      toSource = args: {
        _stub = "fileset";
        inherit (args) fileset;
        outPath = "/nix/store/00000000000000000000000000000000-source";
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
    inherit (builtins) listToAttrs concatStringsSep mapAttrs;
    filterAttrs = pred: set:
      builtins.listToAttrs (map (n: {
        name = n;
        value = set.${n};
      }) (builtins.filter (n: pred n set.${n}) (builtins.attrNames set)));
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
    }) ["cargo-nextest" "cargo-audit" "nats-server" "natscli" "keepalived" "iproute2" "nftables" "openssl" "python3" "nix" "alejandra" "deadnix" "bash" "curl" "jq" "unzip" "makeWrapper" "shadow" "util-linux"])
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
      stdenvNoCC.mkDerivation = args: args // {_stub = "mkDerivation";};
      python3Packages.fetchPypi = args: args // {_stub = "fetchPypi";};
      symlinkJoin = args: args // {_stub = "symlinkJoin";} // {outPath = "/nix/store/00000000000000000000000000000000-${args.name}";};
    };

  crane = {
    mkLib = _: {
      # ipetkov/crane lib/filterCargoSources.nix (the pin's logic).
      filterCargoSources = origPath: type: let
        path = toString origPath;
        base = baseNameOf path;
        parentDir = baseNameOf (dirOf path);
        matchesSuffix = builtins.any (suffix: stubLib.hasSuffix suffix base) [".rs" ".toml"];
        isCargoFile = base == "Cargo.lock";
        isCargoConfig = parentDir == ".cargo" && base == "config";
      in
        type == "directory" || matchesSuffix || isCargoFile || isCargoConfig;
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
    disko = {
      packages.x86_64-linux.disko = {
        _stub = "disko";
        name = "disko";
      };
      nixosModules.disko = {_stub = "disko-module";};
    };
  };
in {
  inherit outputs;
  lib = stubLib;
}
