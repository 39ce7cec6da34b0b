#!/usr/bin/env bash
# Runs tests/whisper/reference.py (faster-whisper on the same audio as our
# engine) in a virtualenv under ~/.cache/potluck, creating it on first use.
# Arguments are passed to reference.py.
set -euo pipefail
venv="$HOME/.cache/potluck/fw-venv"
if ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet faster-whisper==1.2.1 >&2
fi
# `--install`: only make sure the reference is installed (tests/run.sh does this first).
[ "${1:-}" = "--install" ] && exit 0
exec "$venv/bin/python" "$(dirname "$0")/../tests/whisper/reference.py" "$@"
