#!/usr/bin/env bash
# Builds the release artefacts into dist/: the sdist and one abi3 wheel (CPython 3.10 and later)
# per Linux target, with the `dist` profile (fat LTO, stripped), linked by zig so that the glibc
# wheels need no newer glibc than 2.28 (manylinux_2_28) and the musl ones run on Alpine
# (musllinux_1_2). Then `twine check` and `auditwheel show` on every wheel.
#
#   scripts/wheels.sh                  # everything (four wheels and the sdist)
#   scripts/wheels.sh x86_64-manylinux # only the named ones: x86_64-manylinux aarch64-manylinux
#                                      # x86_64-musllinux aarch64-musllinux sdist
#
# The build tools (maturin, ziglang, auditwheel, twine: requirements-wheels.txt) go into their own
# virtual environment, $FACTSTR_WHEEL_TOOLS (default ~/.cache/factstr-wheel-tools).
#
# Rust's standard library for the other targets: rustup's, when `rustup target add` has installed
# it (a CI with internet access). Otherwise Debian's rustc-web, whose standard library for aarch64
# glibc is a Debian package (libstd-rust-web-dev:arm64, a foreign architecture); for musl Debian
# has none, so it is compiled from source (cargo's build-std, from rust-web-src). Those packages
# are installed here when missing and running as root. A build of every target takes long on two
# cores: run it niced.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/factstr-target}"
TOOLS="${FACTSTR_WHEEL_TOOLS:-$HOME/.cache/factstr-wheel-tools}"
# $FACTSTR_DIST: another output folder (scripts/check.sh builds into a fresh one).
DIST="${FACTSTR_DIST:-$ROOT/dist}"

ALL=(x86_64-manylinux aarch64-manylinux x86_64-musllinux aarch64-musllinux sdist)
if [ "$#" -gt 0 ]; then WANTED=("$@"); else WANTED=("${ALL[@]}"); fi

step() { echo "==> $*"; }

tools_python() {
    # Any CPython 3.10+ runs the tools; prefer the interpreter the venv was made with.
    for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "scripts/wheels.sh needs python3 (3.10 or later, with venv)" >&2
    exit 1
}

if [ ! -x "$TOOLS/bin/maturin" ] || [ "$ROOT/requirements-wheels.txt" -nt "$TOOLS/.installed" ]; then
    step "installing the build tools into $TOOLS (requirements-wheels.txt)"
    "$(tools_python)" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --quiet --upgrade pip
    "$TOOLS/bin/python" -m pip install --quiet -r "$ROOT/requirements-wheels.txt"
    touch "$TOOLS/.installed"
fi
export PATH="$TOOLS/bin:$PATH"   # maturin finds `python -m ziglang` here

rust_target_installed() {
    command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx "$1"
}

# A folder whose cargo and rustc are Debian's (the standard library's source beside them), for
# build-std; rustup's proxies come first on PATH otherwise.
debian_rust_bin() {
    local bin="$CARGO_TARGET_DIR/debian-rust-bin"
    if [ ! -x /usr/bin/cargo ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "no Rust standard library for $1: run 'rustup target add $1', or install" \
                "Debian's rustc-web cargo-web rust-web-src" >&2
            exit 1
        fi
        step "installing Debian's rustc-web, cargo-web and rust-web-src (the standard library's source)" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src >&2
    fi
    mkdir -p "$bin"
    ln -sf /usr/bin/cargo "$bin/cargo"
    ln -sf /usr/bin/rustc "$bin/rustc"
    ln -sf /usr/bin/rustdoc "$bin/rustdoc"
    echo "$bin"
}

# Debian's prebuilt standard library for a target (libstd-rust-web-dev of that architecture),
# installed when missing and possible: only glibc targets have one.
debian_std_available() {
    local target="$1" arch
    [ -d "/usr/lib/rustlib/$target/lib" ] && return 0
    case "$target" in
        aarch64-unknown-linux-gnu) arch=arm64 ;;
        *) return 1 ;;
    esac
    [ "$(id -u)" = 0 ] || return 1
    step "installing Debian's standard library for $target (libstd-rust-web-dev:$arch)" >&2
    dpkg --add-architecture "$arch"
    apt-get update -qq >&2
    # The same version as the rustc-web that uses it (apt enforces it: Multi-Arch: same).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "libstd-rust-web-dev:$arch" >&2
    [ -d "/usr/lib/rustlib/$target/lib" ]
}

build_wheel() {
    local name="$1" target compatibility
    case "$name" in
        x86_64-manylinux) target=x86_64-unknown-linux-gnu compatibility=manylinux_2_28 ;;
        aarch64-manylinux) target=aarch64-unknown-linux-gnu compatibility=manylinux_2_28 ;;
        x86_64-musllinux) target=x86_64-unknown-linux-musl compatibility=musllinux_1_2 ;;
        aarch64-musllinux) target=aarch64-unknown-linux-musl compatibility=musllinux_1_2 ;;
        *) echo "unknown target '$name' (one of: ${ALL[*]})" >&2; exit 2 ;;
    esac
    local args=(build --profile dist --target "$target" --zig --compatibility "$compatibility"
        --out "$DIST")
    if rust_target_installed "$target"; then
        step "wheel $name ($target, $compatibility), rustup's standard library"
        maturin "${args[@]}"
    else
        local bin
        bin="$(debian_rust_bin "$target")"
        if debian_std_available "$target"; then
            step "wheel $name ($target, $compatibility), Debian's rustc-web and standard library"
            PATH="$bin:$PATH" maturin "${args[@]}"
            return
        fi
        step "wheel $name ($target, $compatibility), standard library built from Debian's rust-web-src"
        # RUSTC_BOOTSTRAP: build-std is unstable; it is the one unstable feature used.
        PATH="$bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std \
            maturin "${args[@]}"
    fi
}

mkdir -p "$DIST"
for name in "${WANTED[@]}"; do
    if [ "$name" = sdist ]; then
        step "sdist"
        maturin sdist --out "$DIST"
    else
        build_wheel "$name"
    fi
done

step "twine check"
twine check --strict "$DIST"/*

no_search_path="$(mktemp -d)"
for wheel in "$DIST"/*.whl; do
    step "auditwheel show $(basename "$wheel")"
    case "$wheel" in
        *musllinux*)
            # On a glibc host auditwheel takes glibc's `libc.so` (a linker script, not ELF) for
            # musl's libc and crashes. With no search path it lists the external libraries as
            # unresolved instead: for these wheels only musl's `libc.so`, which musl's loader
            # answers itself. The tag itself is confirmed only on a musl host (docs/packaging.md).
            auditwheel show --ldpaths "$no_search_path" "$wheel"
            ;;
        *) auditwheel show "$wheel" ;;
    esac
done
rmdir "$no_search_path"
ls -l "$DIST"
