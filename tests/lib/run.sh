#!/usr/bin/env bash
# Runs the zone-library tests with plain nix-instantiate (no nixpkgs needed):
#   * tests/lib/{cases,module-smoke,flake-smoke}.nix: every attribute must
#     evaluate to true;
#   * tests/lib/failures.nix: every case must fail to evaluate, and its error
#     output must contain the expected message.
# Prints one line per case and a closing "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
report() { # status name detail
  if [[ $1 == ok ]]; then
    passed=$((passed + 1))
    echo "ok   $2"
  else
    failed=$((failed + 1))
    echo "FAIL $2${3:+: $3}"
  fi
}

# Positive cases: one evaluation per file for all of its cases.
#   cases.nix         the pure zone library
#   module-smoke.nix  the NixOS modules against a stub lib (see its header)
#   flake-smoke.nix   flake.nix's outputs with stand-in inputs
for file in tests/lib/cases.nix tests/lib/module-smoke.nix tests/lib/flake-smoke.nix; do
  # stderr apart: nix may warn about its own configuration (a missing
  # nixbld group) on a machine without a Nix daemon.
  if ! json=$(nix-instantiate --eval --strict --json "$file" 2>"$errors"); then
    report fail "$file" "does not evaluate: $(grep -v "^warning: the group 'nixbld'" "$errors")"
    continue
  fi
  while IFS=$'\t' read -r name value; do
    if [[ $value == true ]]; then report ok "$name"; else report fail "$name" "evaluated to $value"; fi
  done < <(python3 -c 'import json,sys
for k, v in json.load(sys.stdin).items():
    print(f"{k}\t{json.dumps(v)}")' <<<"$json")
done

# Failure cases: one evaluation each, since each must abort.
mapfile -t names < <(nix-instantiate --eval --strict --json -E 'builtins.attrNames (import ./tests/lib/failures.nix).cases' 2>"$errors" |
  python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))')
for name in "${names[@]}"; do
  expect=$(nix-instantiate --eval --strict --json -E "(import ./tests/lib/failures.nix).cases.\"$name\".expect" 2>"$errors" |
    python3 -c 'import json,sys; print(json.load(sys.stdin))')
  if out=$(nix-instantiate --eval --strict -E "(import ./tests/lib/failures.nix).cases.\"$name\".result" 2>&1); then
    report fail "rejects_$name" "evaluation succeeded; expected an error containing: $expect"
  elif [[ $out != *"zone: "* || $out != *"$expect"* ]]; then
    report fail "rejects_$name" "wrong message; expected \"$expect\", got: $(grep -m1 -o 'error: .*' <<<"$out" || echo "$out" | head -3)"
  else
    report ok "rejects_$name"
  fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
