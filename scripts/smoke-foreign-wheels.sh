#!/usr/bin/env bash
# Smoke-tests the aarch64 glibc wheel on this x86_64 machine: Debian's qemu-user-static runs an
# arm64 CPython (Debian bookworm's, unpacked by debootstrap into $FACTSTR_FOREIGN_ROOT, default
# ~/.cache/factstr-foreign/arm64) that imports the wheel, appends and queries on Memory and
# SQLite, and checks that the SQLite file locks (file_locks.c) are installed: another library's
# POSIX lock on the store's file is refused while the store is open.
#
#   scripts/smoke-foreign-wheels.sh [WHEEL...]   # default: dist/*manylinux*aarch64.whl
#
# Installs qemu-user-static and debootstrap when missing (as root). The musl wheels are not run:
# no musl CPython can be had from Debian or PyPI; `auditwheel show` checks them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARM64_ROOT="${FACTSTR_FOREIGN_ROOT:-$HOME/.cache/factstr-foreign/arm64}"

step() { echo "==> $*"; }

if [ "$#" -gt 0 ]; then
    WHEELS=("$@")
else
    shopt -s nullglob
    WHEELS=("$ROOT"/dist/*manylinux*aarch64.whl)
    shopt -u nullglob
fi
if [ "${#WHEELS[@]}" -eq 0 ]; then
    echo "no aarch64 manylinux wheel in dist/: run scripts/wheels.sh aarch64-manylinux first" >&2
    exit 1
fi

if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
    step "installing qemu-user-static and debootstrap (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap >/dev/null
fi

if [ ! -x "$ARM64_ROOT/usr/bin/python3" ]; then
    step "unpacking an arm64 Debian with CPython into $ARM64_ROOT (debootstrap, first stage only)"
    rm -rf "$ARM64_ROOT"
    mkdir -p "$(dirname "$ARM64_ROOT")"
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,libsqlite3-0 \
        bookworm "$ARM64_ROOT" http://deb.debian.org/debian >/dev/null
    # The first stage unpacks only the base system; qemu cannot run the second stage here (no
    # binfmt_misc), and unpacking the rest is all an interpreter needs.
    for package in "$ARM64_ROOT"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "$package" "$ARM64_ROOT"
    done
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/factstr-foreign.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

for wheel in "${WHEELS[@]}"; do
    step "$(basename "$wheel") under qemu-aarch64 (Debian bookworm's CPython)"
    site="$WORK/site-$(basename "$wheel" .whl)"
    mkdir -p "$site" "$WORK/data"
    python3 -m zipfile -e "$wheel" "$site"
    qemu-aarch64-static -L "$ARM64_ROOT" "$ARM64_ROOT/usr/bin/python3" - "$site" "$WORK/data" <<'EOF'
import fcntl
import os
import platform
import sqlite3
import sys

sys.path.insert(0, sys.argv[1])
import factstr
from factstr import EventQuery, NewEvent

assert platform.machine() == "aarch64", platform.machine()
assert factstr.__file__.startswith(sys.argv[1]), factstr.__file__

memory = factstr.MemoryStore()
result = memory.append([NewEvent("a", {"n": 1}), NewEvent("b", {"n": 2})])
assert (result.first_sequence_number, result.last_sequence_number) == (1, 2)
assert [r.event_type for r in memory.query(EventQuery.for_event_types(["b"]))] == ["b"]

path = os.path.join(sys.argv[2], "events.db")
with factstr.SqliteStore(path) as store:
    store.append([NewEvent("a", {"n": 1}), NewEvent("b", {"n": 2})])
    # SQLite's shared-lock range: the store holds a read lock there while it is open. A POSIX
    # write lock of another library must be refused (file_locks.c makes ours OFD locks).
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, os.SEEK_SET)
    except OSError:
        pass
    else:
        raise SystemExit("another library's POSIX lock was granted: the file locks are missing")
    finally:
        os.close(fd)
    # Python's own sqlite3 opens and closes the same file; the store goes on.
    stdlib = sqlite3.connect(path)
    stdlib.execute("SELECT count(*) FROM sqlite_master").fetchone()
    stdlib.close()
    store.append([NewEvent("c", {"n": 3})])
with factstr.SqliteStore(path) as store:
    assert [r.sequence_number for r in store.query()] == [1, 2, 3]
print(f"    factstr {factstr.__version__} on {platform.machine()}, CPython {platform.python_version()}: ok")
EOF
    rm -rf "$WORK/data"
done
