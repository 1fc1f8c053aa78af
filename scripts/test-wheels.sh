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

# The tests, away from the source tree: `tests.*` helpers resolve here, `factstr` does not.
mkdir -p "$WORK/suite"
cp -r "$ROOT/tests" "$WORK/suite/tests"
rm -rf "$WORK/suite/tests/parity"   # needs the Rust parity driver, not the wheel
find "$WORK/suite/tests" -name __pycache__ -prune -exec rm -rf {} +
cat >"$WORK/suite/pytest.ini" <<'EOF'
[pytest]
addopts = -ra -p no:cacheprovider
EOF

newest="${PYTHONS[${#PYTHONS[@]}-1]}"
for wheel in "${WHEELS[@]}"; do
    wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
    for python in "${PYTHONS[@]}"; do
        version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        venv="$WORK/venv-$version"
        step "$(basename "$wheel") on CPython $version: fresh venv, pip install (no Rust on PATH)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        (
            export PATH="$venv/bin:$NO_RUST_BIN"
            unset CARGO_TARGET_DIR PYTHONPATH
            for tool in cargo rustc maturin; do
                if command -v "$tool" >/dev/null; then
                    echo "$tool is still on PATH: $(command -v "$tool")" >&2
                    exit 1
                fi
            done
            cd "$WORK/suite"
            python -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
                "$wheel" "pytest>=8" "hypothesis>=6.100"
            # The installed wheel, not a checkout, and its compiled module is the abi3 one.
            python - "$venv" <<'EOF'
import sys
from pathlib import Path

import factstr
import factstr._factstr as native

venv = Path(sys.argv[1]).resolve()
for module in (factstr, native):
    where = Path(module.__file__).resolve()
    assert venv in where.parents, f"{module.__name__} imported from {where}, not from {venv}"
assert ".abi3." in Path(native.__file__).name, native.__file__
print(f"    factstr {factstr.__version__} from {Path(factstr.__file__).parent}")
EOF
            selection=(tests/contract tests/sqlite)
            if [ "$python" = "$newest" ]; then
                step "pytest (Memory, SQLite, PostgreSQL) on CPython $version"
                FACTSTR_REQUIRE_POSTGRES=1 python -m pytest -q -x "${selection[@]}"
            else
                step "pytest (Memory, SQLite) on CPython $version"
                python -m pytest -q -x "${selection[@]}" -k "not postgres"
            fi
        )
    done
done
