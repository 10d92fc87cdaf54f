# Which of `files` (paths relative to `root`) the flake's crane source keeps:
# flake.nix's own filter (craneLib.filterCargoSources, through the faithful
# stand-in of tests/lib/flake-stub.nix, plus the project's additions),
# applied as lib.cleanSourceWith does: to the absolute path, with its type,
# and to every directory above it (a dropped directory drops its contents).
# Used by scripts/check-crane-source.sh.
{
  root, # absolute path string of the checkout
  files, # [ { path = "crates/x/src/lib.rs"; type = "regular"; } ... ]
}: let
  src = (import ./flake-stub.nix).outputs.checks.x86_64-linux.clippy.src;
  parents = rel: let
    parts = builtins.filter builtins.isString (builtins.split "/" rel);
    n = builtins.length parts;
  in
    builtins.genList (i: builtins.concatStringsSep "/" (builtins.genList (j: builtins.elemAt parts j) (i + 1))) (n - 1);
  keeps = f:
    builtins.all (d: src.filter "${root}/${d}" "directory") (parents f.path)
    && src.filter "${root}/${f.path}" f.type;
in
  map (f: f.path) (builtins.filter keeps files)
