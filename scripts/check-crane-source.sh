#!/usr/bin/env bash
# Builds the workspace and compiles every test from exactly the files the
# flake's crane source keeps (`src` in flake.nix: crane's filterCargoSources
# plus the project's additions, computed by tests/lib/crane-source.nix with a
# faithful stand-in of filterCargoSources), so that a file the build needs
# but the filter drops (an include_str! of test data, a .proto) fails here
# and not first under `nix flake check`.
#
# The filtered copy is mounted over the checkout in a private mount
# namespace, so cargo sees the same paths and reuses ./target: whatever the
# filtered tree lacks that a crate read last time makes that crate stale and
# is rebuilt from the filtered files. Needs root (unshare, mount).
#
#   scripts/check-crane-source.sh [CHECKOUT]     default: this repository
set -euo pipefail
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$ROOT"
die() { echo "check-crane-source: FAILED: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "needs root (a private mount namespace); run it through scripts/test"
command -v nix-instantiate >/dev/null || die "nix-instantiate not found (apt-get install nix-bin)"

work=$(mktemp -d /tmp/crane-source.XXXXXX)
trap 'rm -rf "$work"' EXIT

# What a flake source is made of: the tracked files (and new, unignored ones).
python3 - "$work/files.json" <<'PY'
import json, os, subprocess, sys
names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                       capture_output=True).stdout.decode().split("\0")
files = []
for n in filter(None, names):
    if not os.path.lexists(n):
        continue  # deleted in the work tree
    t = "symlink" if os.path.islink(n) else "regular" if os.path.isfile(n) else "unknown"
    files.append({"path": n, "type": t})
json.dump(files, open(sys.argv[1], "w"))
PY
nix-instantiate --eval --strict --json -E "import ./tests/lib/crane-source.nix { root = \"$ROOT\"; files = builtins.fromJSON (builtins.readFile $work/files.json); }" \
  2>"$work/eval.err" >"$work/kept.json" || { cat "$work/eval.err" >&2; die "cannot evaluate the crane source filter"; }
mkdir "$work/src"
python3 - "$work/kept.json" "$work/src" <<'PY'
import json, os, shutil, sys
kept = json.load(open(sys.argv[1]))
for p in kept:
    dst = os.path.join(sys.argv[2], p)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(p, dst, follow_symlinks=False)
print(f"    crane source: {len(kept)} files")
PY
mkdir -p "$ROOT/target" "$work/src/target"

# Same paths, filtered content, the real ./target.
unshare --mount --propagation private bash -euo pipefail -c '
  mount --bind "$1/target" "$2/target"
  mount --rbind "$2" "$1"
  cd "$1"
  echo "==> check-crane-source: cargo build --workspace (filtered source)"
  cargo build --workspace --locked --offline
  echo "==> check-crane-source: cargo test --workspace --no-run (filtered source)"
  cargo test --workspace --locked --offline --no-run
' check-crane-source "$ROOT" "$work/src" || die "the workspace does not build from the files crane keeps (flake.nix: src); add what is missing to the filter"
echo "check-crane-source: the workspace builds and every test compiles from the crane source"
