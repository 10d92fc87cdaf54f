# Smoke test of flake.nix's outputs WITHOUT its inputs (CI has no nixpkgs,
# crane or advisory-db), through the stand-ins of flake-stub.nix: output
# names, the per-crate cargo arguments, the VM tests' nodes and assembled
# test scripts. It proves nothing about nixpkgs itself; `nix flake check` does.
let
  stub = import ./flake-stub.nix;
  inherit (stub) outputs;
  stubLib = stub.lib;
  pkgsOut = outputs.packages.x86_64-linux;
  checks = outputs.checks.x86_64-linux;
  vm = name: checks.${name};
  vmNames = ["bring-up" "alpha-crash" "gamma-crash" "alpha-isolated" "gates" "boot-semantics"];
  has = needle: haystack: builtins.match ".*${needle}.*" (builtins.replaceStrings ["\n"] [" "] haystack) != null;
in {
  package_outputs = builtins.attrNames pkgsOut == ["bsfg-controller" "bsfg-gate-agent" "bsfg-zonesim" "bsfgctl" "default" "disko" "iso-alpha" "iso-beta" "iso-gamma" "nats-server"];
  one_deps_build_shared = builtins.all (p: pkgsOut.${p}.cargoArtifacts._stub == "buildDepsOnly") ["bsfg-controller" "bsfg-gate-agent" "bsfgctl"] && checks.clippy.cargoArtifacts._stub == "buildDepsOnly" && checks.nextest.cargoArtifacts._stub == "buildDepsOnly";
  # nix run .#bsfg-zonesim: the wrapper gives it the zone library, our
  # daemons, the tested nats-server and its run-time tools.
  zonesim_is_wrapped = let
    script = pkgsOut.bsfg-zonesim.script;
  in
    has "--set-default BSFG_REPO" script && has "--set-default BSFG_BIN_DIR" script && has "--set-default NATS_SERVER_BIN" script && has "keepalived/bin" script && has "nix/bin" script && pkgsOut.bsfg-zonesim.env.meta.mainProgram == "bsfg-zonesim";
  # The appliance's nats-server is the tested release (one fact).
  nats_server_is_the_tested_release = let
    v = (import ../../modules/lib/versions.nix).natsServer;
    p = pkgsOut.nats-server;
  in
    p.version == v.version && p.src.sha256 == v.wheel.sha256 && p.src.format == "wheel" && has "v${v.version}" p.installPhase;
  nixos_hosts_run_the_tested_nats_server = let
    m = builtins.elemAt outputs.nixosConfigurations.alpha.modules 1;
  in
    (m {pkgs.stdenv.hostPlatform.system = "x86_64-linux";}).services.bsfg.packages.natsServer.content == pkgsOut.nats-server;
  fmt_check_has_a_pname = checks.fmt.pname == "bsfg-workspace";
  packages_select_their_crate = pkgsOut.bsfg-gate-agent.cargoExtraArgs == "--locked -p bsfg-gate-agent" && pkgsOut.bsfgctl.pname == "bsfgctl";
  version_from_workspace = pkgsOut.bsfg-controller.version == (builtins.fromTOML (builtins.readFile ../../Cargo.toml)).workspace.package.version;
  clippy_denies_warnings = has "--deny warnings" checks.clippy.cargoClippyExtraArgs;
  nextest_unit_tests_only = checks.nextest.cargoNextestExtraArgs == "--workspace --lib --bins";
  audit_uses_advisory_db = checks.audit.advisory-db == "/nix/store/00000000000000000000000000000000-advisory-db";
  check_outputs = builtins.attrNames checks == builtins.sort builtins.lessThan (["audit" "clippy" "doc" "fmt" "nextest" "zone-lib"] ++ vmNames);
  nixos_configurations = builtins.attrNames outputs.nixosConfigurations == ["alpha" "beta" "gamma"];
  host_uses_its_hardware = builtins.elem ../../hosts/beta/hardware.nix outputs.nixosConfigurations.beta.modules;
  # The ISO is the host's installer: nixpkgs' minimal installation CD,
  # disko's module and ours, with the host's system and its zone settings.
  iso_is_the_installer = let
    m = pkgsOut.iso-alpha.modules;
    own = builtins.elemAt m 3;
  in
    builtins.length m
    == 4
    && builtins.elem {_stub = "disko-module";} m
    && builtins.elem ../../modules/installer.nix m
    && (builtins.head ((builtins.head m) {modulesPath = "/nixpkgs/nixos/modules";}).imports) == "/nixpkgs/nixos/modules/installer/cd-dvd/installation-cd-minimal.nix"
    && own.services.bsfg.installer.enable
    && own.services.bsfg.installer.cli == pkgsOut.bsfgctl;
  nixos_modules = builtins.all (n: outputs.nixosModules ? ${n}) ["default" "alpha" "beta" "gamma" "zone" "nats" "keepalived" "controller" "gate-agent" "storage" "firewall" "observability"];
  lib_output_is_zone_library = outputs.lib.zone ? hostSettings;
  # The example zone declares no disks: no disko configuration, and the
  # disko command is a package (for the installer).
  disko_configurations_only_for_declared_disks = outputs.diskoConfigurations == {} && pkgsOut.disko._stub == "disko";

  vm_tests_nodes = builtins.all (n: builtins.attrNames (vm n).nodes == ["alpha" "beta" "client" "gamma"]) vmNames;
  vm_tests_named = builtins.all (n: (vm n).name == "bsfg-${n}") vmNames;
  vm_test_scripts_assembled = builtins.all (n: has "never two controllers active" (vm n).testScript && has "ZONE = json.loads" (vm n).testScript) vmNames;
  vm_test_script_is_its_scenario = has "alpha.crash[(][)]" (vm "alpha-crash").testScript && has "alpha.block[(][)]" (vm "alpha-isolated").testScript;
  vm_zone_constants = has "192.168.1.100" (vm "bring-up").testScript;
  vm_nodes_from_role_modules = let
    node = (vm "gates").nodes.beta {lib = stubLib;};
  in
    builtins.elem outputs.nixosModules.beta node.imports && node.services.bsfg.zone.zone == "plant-t";
  vm_gamma_has_no_artifact_disk = ((vm "bring-up").nodes.gamma {lib = stubLib;}).virtualisation.emptyDiskImages == [];
}
