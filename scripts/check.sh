#!/usr/bin/env bash
# Runs every check: Rust unit tests, the Python test suite on every store, mypy --strict and
# stubtest. This is the README's test command and what CI runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

echo "==> cargo test (engine)"
cargo test --quiet --workspace --exclude factstr-python

echo "==> mypy --strict"
"$PY" -m mypy --strict python tests examples

echo "==> stubtest"
"$PY" -m mypy.stubtest factstr._factstr --allowlist "$ROOT/stubs/stubtest-allowlist.txt"

echo "==> pytest"
"$PY" -m pytest -q "$@"
