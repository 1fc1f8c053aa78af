# Sourced by the other scripts: a project virtual environment with the dev tools, and the
# native module built into it. Idempotent; quick when nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACTSTR_VENV:-$ROOT/.venv}"
# Builds are slow on two cores: keep compiled crates outside the (possibly fresh) clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/factstr-target}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import maturin, pytest, hypothesis, mypy, typing_extensions" 2>/dev/null \
   || [ ! -x "$VENV/bin/ruff" ] \
   || [ "$ROOT/requirements-dev.txt" -nt "$VENV/.dev-tools-installed" ]; then
    echo "==> installing dev tools"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -r "$ROOT/requirements-dev.txt"
    touch "$VENV/.dev-tools-installed"
fi

echo "==> building the native module (release profile)"
(cd "$ROOT" && "$VENV/bin/maturin" develop --release --quiet 2>&1 | grep -v "^$" | tail -n 3)
export PATH="$VENV/bin:$PATH"
