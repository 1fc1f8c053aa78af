#!/usr/bin/env bash
# Runs every check: Rust unit tests, the Python test suite on every store, mypy --strict and
# stubtest. This is the README's test command and what CI runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

# The PostgreSQL tests start a throwaway cluster with Debian's server binaries, unless
# FACTSTR_TEST_POSTGRES_URL names a server. Install them when missing (CI must not skip them).
if [ -z "${FACTSTR_TEST_POSTGRES_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "==> installing the PostgreSQL server (Debian package)"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "PostgreSQL server binaries are missing: install Debian's postgresql package" >&2
        exit 1
    fi
fi
export FACTSTR_REQUIRE_POSTGRES=1

echo "==> cargo test (engine)"
cargo test --quiet --workspace --exclude factstr-python

echo "==> mypy --strict"
"$PY" -m mypy --strict python tests examples

echo "==> stubtest"
"$PY" -m mypy.stubtest factstr._factstr --allowlist "$ROOT/stubs/stubtest-allowlist.txt"

echo "==> pytest"
"$PY" -m pytest -q "$@"
