#!/usr/bin/env bash
# The main job: builds factstr and runs the example program on the embedded default store.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" >&2
cd "$ROOT"
exec "$PY" examples/course_enrollment.py "$@"
