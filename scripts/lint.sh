#!/usr/bin/env bash
# The lint layer: formatting and lints of Rust and Python, every finding an error. Run by
# scripts/check.sh (so CI runs it) and by the pre-commit hooks (.pre-commit-config.yaml). Fix
# what it reports with `cargo fmt --all`, `ruff format .` and `ruff check --fix .`.
# It needs only the tools (ruff from the venv of scripts/setup.sh, or on PATH), not a build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACTSTR_VENV:-$ROOT/.venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/factstr-target}"
RUFF="$VENV/bin/ruff"
[ -x "$RUFF" ] || RUFF="ruff"
cd "$ROOT"

echo "==> cargo fmt --check"
cargo fmt --all --check

# The workspace is the engine and the binding; rust/factstr-parity (dev-only) is a workspace of
# its own, because its dependencies clash with ours.
echo "==> cargo clippy (warnings are errors)"
cargo clippy --quiet --workspace --all-targets -- -D warnings

echo "==> ruff check"
"$RUFF" check .

echo "==> ruff format --check"
"$RUFF" format --check .
