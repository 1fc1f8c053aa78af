#!/usr/bin/env bash
# Runs every check: the lint layer (scripts/lint.sh), Rust unit tests, the Python test suite on
# every store, mypy --strict, stubtest, and the benchmarks' quick mode. This is the README's
# test command and what CI runs. The PostgreSQL tests fail, never skip, when PostgreSQL cannot
# start.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

echo "==> lint (scripts/lint.sh)"
bash "$ROOT/scripts/lint.sh"

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

echo "==> cargo test (engine)"
cargo test --quiet --workspace --exclude factstr-python

# The benchmarks' baselines and peers (psycopg, eventsourcing, umadb, matplotlib), so that a fresh
# machine runs the bench step below (and mypy, which follows tests/bench into bench/, sees their types).
if ! "$PY" -c "import psycopg, psycopg_pool, eventsourcing, umadb, matplotlib" 2>/dev/null \
   || [ "$ROOT/bench/requirements.txt" -nt "$VENV/.bench-requirements-installed" ]; then
    echo "==> installing benchmark dependencies (bench/requirements.txt)"
    "$PY" -m pip install --quiet -r "$ROOT/bench/requirements.txt"
    touch "$VENV/.bench-requirements-installed"
fi

echo "==> mypy --strict"
"$PY" -m mypy --strict python tests examples

echo "==> stubtest"
"$PY" -m mypy.stubtest factstr._factstr --allowlist "$ROOT/scripts/stubtest-allowlist.txt"

# The benchmarks' quick mode (issue 12), about 5 minutes here: every scenario on every subject
# at sizes whose ratios mean something (durable PostgreSQL; S1/S2 on a store of 10,000 facts;
# S3 on 10,000 and 50,000 facts, contexts of ~100; subjects in turns; p50/p99/p99.9), ending
# with the table of factstr against the floors; JSON and chart in bench/results/ci. It covers
# everything --smoke did, so smoke no longer runs here. No figure is checked (the machine is
# shared and noisy): this fails only if the harness or the group-commit script crashes, or
# factstr breaks a scenario's correctness check (false conflicts in S7, lost stream deliveries,
# a short replay). Under nice, so that it yields to the other work of a shared machine.
echo "==> benchmarks (quick mode: bench/README.md; figures printed, not checked)"
nice -n 10 "$PY" bench/run.py --quick --output "$ROOT/bench/results/ci"
# The asyncio API's figures (factstr.aio), quick counts (about 10 s).
nice -n 10 "$PY" bench/aio.py --quick --output "$ROOT/bench/results/ci"

# The package as users install it (docs/packaging.md): the x86_64 manylinux_2_28 abi3 wheel, built
# as released (dist profile, zig), checked by twine and `auditwheel show`, then installed into fresh
# venvs of CPython 3.10-3.13 with no Rust on PATH and tested there. The aarch64 and musl wheels are
# built by `scripts/wheels.sh` without arguments, not here.
echo "==> release wheel (x86_64 manylinux) and its installed-wheel tests"
wheel_dist="$(mktemp -d "${TMPDIR:-/tmp}/factstr-ci-dist.XXXXXX")"
trap 'rm -rf "$wheel_dist"' EXIT
FACTSTR_DIST="$wheel_dist" bash "$ROOT/scripts/wheels.sh" x86_64-manylinux
bash "$ROOT/scripts/test-wheels.sh" "$wheel_dist"/*.whl

# Last, so that its summary closes the output.
echo "==> pytest"
"$PY" -m pytest -q "$@"
