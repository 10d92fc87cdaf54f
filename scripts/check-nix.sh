#!/usr/bin/env bash
# Checks of the Nix side that run WITHOUT nixpkgs (CI has Debian's nix-bin,
# no Nix store, no network beyond the package registries):
#   1. every .nix file parses            (nix-instantiate --parse)
#   2. flake.lock matches the pins        (and flake.nix's input URLs)
#   3. zone-library and module tests      (tests/lib/run.sh)
#   4. formatting                         (alejandra 3.1.0)
#   5. dead code                          (deadnix 1.3.1)
#   6. VM test scripts                    (py_compile + pyflakes, and mypy as the
#                                          test driver runs it: tests/typing/)
#   7. checks.zone-lib on exactly its fileset (flake.nix)
#   8. the appliance's keepalived.conf   (Debian's keepalived -t, root)
#   9. the appliance's chrony.conf       (Debian's chronyd -p)
# What needs real nixpkgs (module evaluation, builds, VM tests) runs under
# `nix flake check` on a machine with Nix; see docs/nixos.md.
#
# Usage: scripts/check-nix.sh          check everything
#        scripts/check-nix.sh --fix    format the .nix files in place first
#
# Tools are installed once into the project's .venv (git-ignored):
# .venv/bin/{deadnix,alejandra,pyflakes,mypy}. Delete them to force a reinstall.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
BIN=$VENV/bin

DEADNIX_VERSION=1.3.1
ALEJANDRA_VERSION=3.1.0
PYFLAKES_VERSION=4.1.0
# The mypy the test driver runs (nixpkgs' python3Packages.mypy at the pin is
# of the 1.19 line; a different minor version only changes error wording).
MYPY_VERSION=1.19.1

fix=false
[[ ${1:-} == --fix ]] && fix=true

step_started=0
step() {
  step_started=$SECONDS
  echo "==> check-nix: $*"
}
done_step() {
  echo "    ok ($((SECONDS - step_started)) s)"
}
die() {
  echo "check-nix: FAILED: $*" >&2
  exit 1
}

command -v nix-instantiate >/dev/null || die "nix-instantiate not found; install it with: apt-get install -y nix-bin"
command -v python3 >/dev/null || die "python3 not found"

# Tracked and new (not ignored) files, so a file forgotten in `git add`
# is checked locally too.
mapfile -t nix_files < <(git ls-files -co --exclude-standard -- '*.nix' | sort)
mapfile -t py_scripts < <(git ls-files -co --exclude-standard -- 'tests/scripts/*.py' | sort)
((${#nix_files[@]} > 0)) || die "no .nix files found"

# ---------------------------------------------------------------- tools

install_tools() {
  if [[ ! -x $BIN/python ]]; then
    echo "    creating $VENV"
    python3 -m venv "$VENV"
  fi
  if [[ ! -x $BIN/pyflakes ]] || [[ $("$BIN/pyflakes" --version) != "$PYFLAKES_VERSION "* ]]; then
    echo "    installing pyflakes $PYFLAKES_VERSION"
    "$BIN/pip" install --quiet "pyflakes==$PYFLAKES_VERSION"
  fi
  if [[ ! -x $BIN/mypy ]] || [[ $("$BIN/mypy" --version) != "mypy $MYPY_VERSION "* ]]; then
    echo "    installing mypy $MYPY_VERSION"
    "$BIN/pip" install --quiet "mypy==$MYPY_VERSION"
  fi
  if [[ ! -x $BIN/deadnix ]] || [[ $("$BIN/deadnix" --version) != *"$DEADNIX_VERSION"* ]]; then
    echo "    installing deadnix $DEADNIX_VERSION (cargo install, a few minutes once)"
    cargo install --quiet --locked --root "$VENV" --version "$DEADNIX_VERSION" deadnix
  fi
  if [[ ! -x $BIN/alejandra ]] || [[ $("$BIN/alejandra" --version) != *"$ALEJANDRA_VERSION"* ]]; then
    # crates.io's `alejandra` 3.1.0 is the formatter as a library (the CLI
    # crate is not published there); this 30-line front end calls its
    # format::in_fs, which is what the upstream CLI does per file.
    echo "    building alejandra $ALEJANDRA_VERSION (library from crates.io + minimal CLI, once)"
    local src=$VENV/src/alejandra-cli
    mkdir -p "$src/src"
    cat >"$src/Cargo.toml" <<EOF
[package]
name = "alejandra-cli"
version = "$ALEJANDRA_VERSION"
edition = "2021"
publish = false

[[bin]]
name = "alejandra"
path = "src/main.rs"

[dependencies]
alejandra = "=$ALEJANDRA_VERSION"

# Not part of the project's Cargo workspace.
[workspace]
EOF
    cat >"$src/src/main.rs" <<'EOF'
//! Minimal alejandra front end: `alejandra [--check] FILE...`.
use alejandra::format::{in_fs, Status};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "--version" => {
                println!("alejandra {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => files.push(arg),
        }
    }
    let mut failures = 0;
    for file in files {
        match in_fs(file.clone(), !check) {
            Status::Error(e) => {
                eprintln!("{file}: {e}");
                failures += 1;
            }
            Status::Changed(true) if check => {
                eprintln!("{file}: not formatted (run scripts/check-nix.sh --fix)");
                failures += 1;
            }
            Status::Changed(true) => eprintln!("formatted {file}"),
            Status::Changed(false) => {}
        }
    }
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
EOF
    (cd "$src" && cargo build --quiet --release --target-dir "$VENV/src/target")
    install -m 0755 "$VENV/src/target/release/alejandra" "$BIN/alejandra"
  fi
}

step "tools (project-local, in .venv)"
install_tools
echo "    $("$BIN/alejandra" --version), $("$BIN/deadnix" --version), pyflakes $("$BIN/pyflakes" --version | cut -d' ' -f1), $("$BIN/mypy" --version | cut -d' ' -f1-2)"
done_step

# ---------------------------------------------------------------- 1. parse

step "parse ${#nix_files[@]} .nix files"
for f in "${nix_files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null || die "$f does not parse"
done
done_step

# ---------------------------------------------------------------- 2. pins

step "flake.lock pins and flake.nix inputs"
inputs_json=$(nix-instantiate --eval --strict --json -E '(import ./flake.nix).inputs') ||
  die "cannot read the inputs of flake.nix"
python3 - "$inputs_json" <<'EOF' || die "flake.lock / flake.nix pins (see above)"
import json, sys

# The pins, byte for byte. Changing one is a deliberate act: update
# it here, in flake.lock and in docs/nixos.md together.
PINS = {
    "nixpkgs": {
        "locked": {"lastModified": 1785734586, "narHash": "sha256-ODZkEK9Gy50yg6h98u7KkitZ3oc/uuTFK00bh1CRdNA=",
                   "owner": "NixOS", "repo": "nixpkgs", "rev": "531670d871c0e29724a02f3cbcac170adc65b58c", "type": "github"},
        "original": {"owner": "NixOS", "ref": "nixos-26.05", "repo": "nixpkgs", "type": "github"},
        "url": "github:NixOS/nixpkgs/nixos-26.05",
    },
    "crane": {
        "locked": {"lastModified": 1785631643, "narHash": "sha256-H++/2dMt+5+tErKU+t5z6c4Xedvj9w+UPQYrpygwIPw=",
                   "owner": "ipetkov", "repo": "crane", "rev": "b8d87f76ea4e4b6f30f2e6eaf3fbb60ff7d87167", "type": "github"},
        "original": {"owner": "ipetkov", "repo": "crane", "type": "github"},
        "url": "github:ipetkov/crane",
    },
    "advisory-db": {
        "flake": False,
        "locked": {"lastModified": 1785693380, "narHash": "sha256-drCgheG8xP1Swm4pdmlPjVNtSfxWmM/MCvrMl9YARnE=",
                   "owner": "rustsec", "repo": "advisory-db", "rev": "d91a8fc9492378f23cba86b81770c6d16de6ebba", "type": "github"},
        "original": {"owner": "rustsec", "repo": "advisory-db", "type": "github"},
        "url": "github:rustsec/advisory-db",
    },
    # narHash: `nix-hash --type sha256` of the commit's tree (git archive),
    # as SRI; lastModified: its committer time.
    "disko": {
        "inputs": {"nixpkgs": ["nixpkgs"]},
        "locked": {"lastModified": 1773506317, "narHash": "sha256-qWKbLUJpavIpvOdX1fhHYm0WGerytFHRoh9lVck6Bh0=",
                   "owner": "nix-community", "repo": "disko", "rev": "878ec37d6a8f52c6c801d0e2a2ad554c75b9353c", "type": "github"},
        "original": {"owner": "nix-community", "repo": "disko", "type": "github"},
        "url": "github:nix-community/disko",
        "follows": {"nixpkgs": "nixpkgs"},
    },
}

errors = []
text = open("flake.lock").read()
lock = json.loads(text)
canonical = json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
if text != canonical:
    errors.append("flake.lock is not in Nix's canonical form (2-space indent, sorted keys, final newline)")
if lock.get("version") != 7:
    errors.append(f"flake.lock version is {lock.get('version')}, expected 7")
if lock.get("root") != "root":
    errors.append("flake.lock root node must be \"root\"")
nodes = lock.get("nodes", {})
expected_nodes = {"root", *PINS}
if set(nodes) != expected_nodes:
    errors.append(f"flake.lock nodes are {sorted(nodes)}, expected {sorted(expected_nodes)}")
root_inputs = nodes.get("root", {}).get("inputs", {})
if root_inputs != {name: name for name in PINS}:
    errors.append(f"root inputs are {root_inputs}")

inputs = json.loads(sys.argv[1])
if set(inputs) != set(PINS):
    errors.append(f"flake.nix inputs are {sorted(inputs)}, expected {sorted(PINS)}")

for name, pin in PINS.items():
    node = nodes.get(name, {})
    expected = {k: pin[k] for k in ("locked", "original")}
    for k in ("flake", "inputs"):
        if k in pin:
            expected[k] = pin[k]
    if node != expected:
        errors.append(f"flake.lock node {name!r} differs from the pin:\n      got      {node}\n      expected {expected}")
    declared = inputs.get(name, {})
    if declared.get("url") != pin["url"]:
        errors.append(f"flake.nix input {name}.url is {declared.get('url')!r}, expected {pin['url']!r} (must match flake.lock's original)")
    if declared.get("flake", True) != pin.get("flake", True):
        errors.append(f"flake.nix input {name}.flake must be {pin.get('flake', True)}")
    for input_name, target in pin.get("follows", {}).items():
        got = declared.get("inputs", {}).get(input_name, {}).get("follows")
        if got != target:
            errors.append(f"flake.nix input {name}.inputs.{input_name}.follows is {got!r}, expected {target!r} (one nixpkgs for the whole flake)")

for e in errors:
    print("    " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
done_step

# ---------------------------------------------------------------- 3. tests

step "zone library and module smoke tests (tests/lib/run.sh)"
if ! out=$(bash tests/lib/run.sh 2>&1); then
  echo "$out" | grep -v '^ok ' >&2
  die "zone library tests"
fi
# The runner's closing "N passed, N failed" line, for test-result parsers.
echo "zone-lib: $(tail -n 1 <<<"$out")"
done_step

step "simulator entry point evaluates (modules/lib/simulator.nix on hosts/zone.nix)"
nix-instantiate --eval --strict --json \
  -E 'import ./modules/lib/simulator.nix { zoneFile = ./hosts/zone.nix; runDir = "/run/check-nix"; }' |
  python3 -c 'import json, sys; d = json.load(sys.stdin); assert sorted(d["hosts"]) == ["alpha", "beta", "gamma"], d["hosts"].keys()' ||
  die "simulator.nix"
done_step

# ---------------------------------------------------------------- 4. format

if $fix; then
  step "formatting ${#nix_files[@]} files with alejandra"
  "$BIN/alejandra" "${nix_files[@]}" || die "alejandra could not format (syntax error?)"
  done_step
fi
step "alejandra --check"
"$BIN/alejandra" --check "${nix_files[@]}" || die "unformatted .nix files (run: scripts/check-nix.sh --fix)"
done_step

# ---------------------------------------------------------------- 5. lint

step "deadnix"
"$BIN/deadnix" --fail "${nix_files[@]}" || die "unused Nix bindings (see above)"
done_step

# ---------------------------------------------------------------- 6. python

step "VM test scripts: py_compile and pyflakes (${#py_scripts[@]} files)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "${py_scripts[@]}"; do
  # Bytecode goes to the temporary directory, not into the work tree.
  PYTHONPYCACHEPREFIX=$tmp/pycache python3 -m py_compile "$f" || die "$f does not compile"
done
# pyflakes reads each VM test's script exactly as the test driver gets it:
# tests/common.nix assembles constants + common.py + scenario, and
# tests/lib/flake-stub.nix evaluates that without nixpkgs.
nix-instantiate --eval --strict --json -E '
  let stub = import ./tests/lib/flake-stub.nix;
      checks = stub.outputs.checks.x86_64-linux;
      vmTests = builtins.filter (n: (checks.${n}._stub or "") == "nixos-test") (builtins.attrNames checks);
      vlansOf = node: map (i: i.vlan) (builtins.attrValues (((node { lib = stub.lib; config = {}; }).virtualisation or {}).interfaces or {}));
      unique = xs: builtins.attrNames (builtins.listToAttrs (map (v: { name = toString v; value = null; }) xs));
  in builtins.listToAttrs (map (n: { name = n; value = {
       script = checks.${n}.testScript;
       nodes = builtins.attrNames checks.${n}.nodes;
       vlans = unique (builtins.concatLists (map vlansOf (builtins.attrValues checks.${n}.nodes)));
     }; }) vmTests)' 2>"$tmp/eval.err" >"$tmp/scripts.json" ||
  { cat "$tmp/eval.err" >&2; die "cannot assemble the VM test scripts"; }
python3 - "$tmp" "$ROOT/tests/typing" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
typing = pathlib.Path(sys.argv[2])
scripts = json.loads((out / "scripts.json").read_text())
assert len(scripts) >= 6, f"expected the six VM tests, found {sorted(scripts)}"
for name, t in scripts.items():
    (out / f"vm-{name}.py").write_text(t["script"])
    # As nixos/lib/testing/driver.nix assembles testScriptWithTypes: the
    # prepend, a line of machine hints, one of container hints (none), one
    # of VLAN hints, then the script.
    for variant, prepend, machine in [("", "prepend.py", "QemuMachine"), ("-legacy", "prepend-legacy.py", "Machine")]:
        hints = " ".join(f"{n}: {machine};" for n in t["nodes"])
        vlans = " ".join(f"vlan{v}: VLan" for v in t["vlans"])
        text = (typing / prepend).read_text() + hints + "\n\n" + vlans + "\n" + t["script"]
        (out / f"typed{variant}-{name}").write_text(text)
EOF
# Names the test driver defines for every script.
export PYFLAKES_BUILTINS="alpha,beta,gamma,client,machines,start_all,join_all,subtest,polling_condition,retry,log,serial_stdout_on,serial_stdout_off,create_machine,driver"
for assembled in "$tmp"/vm-*.py; do
  PYTHONPYCACHEPREFIX=$tmp/pycache python3 -m py_compile "$assembled" || die "assembled $(basename "$assembled") does not compile"
  "$BIN/pyflakes" "$assembled" || die "pyflakes: $(basename "$assembled") (the assembled script: 2 constant lines, common.py, then the scenario)"
done
done_step

step "VM test scripts: mypy as the test driver runs it (26.05 and legacy driver stubs, tests/typing/)"
for typed in "$tmp"/typed-*; do
  MYPYPATH=$ROOT/tests/typing "$BIN/mypy" --no-implicit-optional --pretty --no-color-output \
    --cache-dir "$tmp/mypy-cache" "$typed" ||
    die "mypy: $(basename "$typed") (the test driver's type check would fail this VM test)"
done
done_step

# ---------------------------------------------------------------- 7. fileset

step "checks.zone-lib on exactly its fileset (flake.nix: zoneLibCheck)"
nix-instantiate --eval --strict --json -E "
  let check = (import ./tests/lib/flake-stub.nix).outputs.checks.x86_64-linux.zone-lib;
      root = toString ./.;
  in map (p: builtins.substring (builtins.stringLength root + 1) (-1) (toString p)) check.env.src.fileset" \
  2>"$tmp/eval.err" >"$tmp/fileset.json" || { cat "$tmp/eval.err" >&2; die "cannot read the zone-lib fileset"; }
mkdir "$tmp/fileset"
python3 - "$tmp/fileset.json" "$tmp/fileset" <<'EOF'
import json, os, shutil, subprocess, sys
# A flake's source is its tracked files; lib.fileset takes those it names.
tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], check=True,
                         capture_output=True, text=True).stdout.split("\n")
for entry in json.load(open(sys.argv[1])):
    if not os.path.lexists(entry):
        sys.exit(f"the fileset names {entry}, which does not exist")
    for f in sorted(t for t in tracked if t == entry or t.startswith(entry + "/")):
        dst = os.path.join(sys.argv[2], f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(f, dst)
EOF
(cd "$tmp/fileset" && bash tests/lib/run.sh) >"$tmp/fileset.out" 2>&1 ||
  { grep -v '^ok ' "$tmp/fileset.out" >&2; die "tests/lib/run.sh fails on checks.zone-lib's fileset alone: add what it reads to the fileset in flake.nix"; }
echo "    $(tail -n 1 "$tmp/fileset.out") on the fileset alone"
done_step

# ---------------------------------------------------------------- 8. keepalived

step "the appliance's keepalived.conf (alpha, beta of hosts/zone.nix): Debian's keepalived -t"
if [[ $EUID -ne 0 ]]; then
  [[ ${CI:-} == true ]] && die "keepalived -t needs root (a network namespace with the zone's interface)"
  echo "    skipped: not root (scripts/test runs it as root)"
else
  scripts/check-keepalived-conf.sh
fi
done_step

step "the appliance's chrony.conf (every host of hosts/zone.nix): Debian's chronyd -p"
scripts/check-chrony-conf.sh
done_step

echo "check-nix: all checks passed in $SECONDS s"
