# NixOS VM tests, one per scenario of contract section 8; each is
# checks.x86_64-linux.<name> in the flake and mirrors a zone-simulator drill
# (docs/testing.md has the mapping and how to run them).
{
  pkgs,
  lib,
  nixosModules,
}: let
  common = import ./common.nix {inherit pkgs lib nixosModules;};
  scenario = name: extra: common.mkTest ({inherit name;} // extra);
in {
  bring-up = scenario "bring-up" {};
  alpha-crash = scenario "alpha-crash" {};
  gamma-crash = scenario "gamma-crash" {};
  alpha-isolated = scenario "alpha-isolated" {};
  gates = scenario "gates" {globalTimeout = 5400;};
  boot-semantics = scenario "boot-semantics" {globalTimeout = 5400;};
}
