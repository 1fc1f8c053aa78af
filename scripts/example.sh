#!/usr/bin/env bash
# The main job: builds factstr and runs the example program on the embedded default store (a new
# SQLite file). Installs only what the example needs (maturin, into .venv/); shows cargo's own
# progress while it builds.
#
#   scripts/example.sh [--keep] [STORE_URL]
#
#   --keep      keep the SQLite file (and print where it is); by default it is removed at the end
#   STORE_URL   run on another store instead: memory://, sqlite:///path.db, postgresql://...
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACTSTR_VENV:-$ROOT/.venv}"
# Compiled crates live outside the (possibly fresh) clone, shared with scripts/check.sh.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/factstr-target}"

keep=0
url=""
for argument in "$@"; do
    case "$argument" in
        --keep) keep=1 ;;
        -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $argument (see --help)" >&2; exit 2 ;;
        *) url="$argument" ;;
    esac
done

step() { echo "==> [$1/4] $2"; }

if [ ! -x "$VENV/bin/python" ]; then
    step 1 "creating the virtual environment $VENV"
    python3 -m venv "$VENV"
else
    step 1 "virtual environment $VENV (exists)"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "factstr needs Python 3.10 or later; $VENV has $("$PY" -V)" >&2
    exit 1
fi

if "$PY" -c "import maturin" 2>/dev/null; then
    step 2 "maturin is installed (the one build tool the example needs)"
else
    step 2 "installing maturin, the one build tool the example needs"
    "$PY" -m pip install --quiet --disable-pip-version-check "maturin>=1.9,<2"
fi

if [ -d "$CARGO_TARGET_DIR/release" ]; then
    cache="warm: $(du -sh "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)"
else
    cache="cold: the first build compiles about 120 crates, several minutes on two cores"
fi
step 3 "building factstr (release profile; build cache $CARGO_TARGET_DIR, $cache)"
(cd "$ROOT" && "$VENV/bin/maturin" develop --release)
echo "    build cache: $(du -sh "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1) in $CARGO_TARGET_DIR" \
    "(rm -rf it to free the space; the next build starts cold)"

if [ -n "$url" ]; then
    step 4 "running examples/course_enrollment.py on $url"
    exec "$PY" "$ROOT/examples/course_enrollment.py" "$url"
fi
folder="$(mktemp -d "${TMPDIR:-/tmp}/factstr-example.XXXXXX")"
database="$folder/courses.db"
if [ "$keep" = 1 ]; then
    trap 'echo "==> kept the store: $database"' EXIT
else
    trap 'rm -rf "$folder"; echo "==> removed the store $database (--keep keeps it)"' EXIT
fi
step 4 "running examples/course_enrollment.py on SQLite, store file $database"
"$PY" "$ROOT/examples/course_enrollment.py" "sqlite:///$database"
