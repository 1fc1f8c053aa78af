#!/usr/bin/env bash
# Tests the built wheels as users get them: each x86_64 glibc wheel in dist/ is installed into a
# fresh virtual environment of every supported CPython, with no Rust toolchain on PATH, and the
# test suite runs from a copy of tests/ outside the source tree, so that `import factstr` can only
# find the installed wheel (checked before the tests run).
#
#   scripts/test-wheels.sh [WHEEL...]     # default: dist/*manylinux*x86_64.whl
#
# Every CPython runs the contract suite on Memory and SQLite and the SQLite-specific tests; the
# newest also runs the contract suite on PostgreSQL (a throwaway cluster, tests/postgres_server.py).
# The CPythons run in parallel, each with its own log (printed whole when it fails). Besides the
# wheel, each venv gets pytest, hypothesis and mypy from PyPI (mypy checks the installed stubs).
# The interpreters: $FACTSTR_TEST_PYTHONS (paths, space-separated), else python3.10 .. python3.13
# from PATH or pyenv; a missing one is an error, never a skip.
#
# The other wheels (aarch64, musl) cannot run here natively: `auditwheel show` checks their tags
# (scripts/wheels.sh), and with qemu-user-static and FACTSTR_TEST_FOREIGN=1 they are imported and
# smoke-tested (scripts/smoke-foreign-wheels.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUPPORTED=(3.10 3.11 3.12 3.13)

step() { echo "==> $*"; }

if [ "$#" -gt 0 ]; then
    WHEELS=("$@")
else
    shopt -s nullglob
    WHEELS=("$ROOT"/dist/*manylinux*x86_64.whl)
    shopt -u nullglob
fi
if [ "${#WHEELS[@]}" -eq 0 ]; then
    echo "no x86_64 manylinux wheel in dist/: run scripts/wheels.sh x86_64-manylinux first" >&2
    exit 1
fi

find_python() {
    local version="$1" candidate
    for candidate in "$(command -v "python$version" || true)" \
        "$HOME"/.pyenv/versions/"$version".*/bin/"python$version"; do
        # (a pyenv shim is on PATH for every version but runs only the selected ones)
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c \
            "import sys, venv; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" \
            2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "no CPython $version found (PATH or ~/.pyenv/versions): every supported version is tested" >&2
    exit 1
}

if [ -n "${FACTSTR_TEST_PYTHONS:-}" ]; then
    read -r -a PYTHONS <<<"$FACTSTR_TEST_PYTHONS"
else
    PYTHONS=()
    for version in "${SUPPORTED[@]}"; do PYTHONS+=("$(find_python "$version")"); done
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/factstr-wheel-tests.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# A PATH without any Rust toolchain: the system folders, less cargo, rustc, rustup and maturin
# (the sbin ones too: the PostgreSQL tests run initdb through runuser).
NO_RUST_BIN="$WORK/bin"
mkdir -p "$NO_RUST_BIN"
for folder in /usr/local/bin /usr/bin /bin /usr/local/sbin /usr/sbin /sbin; do
    # One cp for the whole folder (symlinks; the first folder wins a name; folders are skipped).
    [ -d "$folder" ] && cp -sn "$folder"/* "$NO_RUST_BIN"/ 2>/dev/null || true
done
rm -f "$NO_RUST_BIN"/cargo* "$NO_RUST_BIN"/rustc* "$NO_RUST_BIN"/rustdoc* \
    "$NO_RUST_BIN"/rustup* "$NO_RUST_BIN"/rust-* "$NO_RUST_BIN"/maturin*

# What the suite needs besides the wheel, from PyPI (the dev tools' constraints): mypy checks what
# the installed stubs let a user's code do (tests/contract/test_typing.py).
TEST_DEPS=("pytest>=8" "hypothesis>=6.100" "mypy>=1.10")

# One CPython's run: a fresh venv, the wheel and TEST_DEPS installed with no Rust on PATH, a check
# that `factstr` comes from the venv, then pytest in its own copy of tests/ (outside the source
# tree: `tests.*` helpers resolve there, `factstr` does not; own copy: own .hypothesis and
# .mypy_cache, so the parallel runs do not share state).
run_one() {
    local wheel="$1" python="$2" version="$3" with_postgres="$4"
    local venv="$WORK/venv-$version" suite="$WORK/suite-$version"
    export PATH="$venv/bin:$NO_RUST_BIN"
    unset CARGO_TARGET_DIR PYTHONPATH VIRTUAL_ENV
    "$python" -m venv "$venv"
    for tool in cargo rustc maturin; do
        if command -v "$tool" >/dev/null; then
            echo "$tool is still on PATH: $(command -v "$tool")" >&2
            return 1
        fi
    done
    mkdir -p "$suite"
    cp -r "$ROOT/tests" "$suite/tests"
    rm -rf "$suite/tests/parity"   # needs the Rust parity driver, not the wheel
    find "$suite/tests" -name __pycache__ -prune -exec rm -rf {} +
    printf '[pytest]\naddopts = -ra -p no:cacheprovider\n' >"$suite/pytest.ini"
    cd "$suite"
    python -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        "$wheel" "${TEST_DEPS[@]}"
    # The installed wheel, not a checkout, and its compiled module is the abi3 one.
    python - "$venv" <<'PYEOF'
import sys
from pathlib import Path

import factstr
import factstr._factstr as native

venv = Path(sys.argv[1]).resolve()
for module in (factstr, native):
    where = Path(module.__file__).resolve()
    assert venv in where.parents, f"{module.__name__} imported from {where}, not from {venv}"
assert ".abi3." in Path(native.__file__).name, native.__file__
print(f"factstr {factstr.__version__} from {Path(factstr.__file__).parent}")
PYEOF
    local selection=(tests/contract tests/sqlite --basetemp "$WORK/tmp-$version")
    if [ "$with_postgres" = 1 ]; then
        echo "pytest: Memory, SQLite and PostgreSQL"
        python -m pytest -q -x "${selection[@]}"
    else
        echo "pytest: Memory and SQLite"
        python -m pytest -q -x "${selection[@]}" -k "not postgres"
    fi
}

# The CPythons run in parallel: the suite mostly waits (threads, child processes, deadlines), so
# four runs take little longer than one. Each writes its own log, shown when it ends.
newest="${PYTHONS[${#PYTHONS[@]}-1]}"
failed=()
for wheel in "${WHEELS[@]}"; do
    wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
    step "$(basename "$wheel"): fresh venvs of CPython ${PYTHONS[*]##*/}, no Rust on PATH," \
        "the contract suite (PostgreSQL on the newest)"
    pids=() versions=()
    for python in "${PYTHONS[@]}"; do
        version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        rm -rf "$WORK/venv-$version" "$WORK/suite-$version" "$WORK/tmp-$version"
        with_postgres=0
        [ "$python" = "$newest" ] && with_postgres=1
        (run_one "$wheel" "$python" "$version" "$with_postgres") >"$WORK/log-$version" 2>&1 &
        pids+=("$!") versions+=("$version")
    done
    for i in "${!pids[@]}"; do
        version="${versions[$i]}"
        if wait "${pids[$i]}"; then
            step "CPython $version: passed"
            grep -E "^factstr |^pytest: " "$WORK/log-$version" | sed 's/^/    /'
            tail -n 1 "$WORK/log-$version" | sed 's/^/    /'
        else
            step "CPython $version: FAILED ($(basename "$wheel")); its log:"
            sed 's/^/    /' "$WORK/log-$version"
            failed+=("$version:$(basename "$wheel")")
        fi
    done
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "installed-wheel tests failed: ${failed[*]}" >&2
    exit 1
fi
