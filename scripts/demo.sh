#!/usr/bin/env bash
# Installs what is needed, builds the widget and runs the local demo until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# Whisper models for transcription, served beside the widget.
scripts/fetch-models.sh >/dev/null
exec node scripts/demo.mjs
