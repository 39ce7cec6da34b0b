# Shared settings for Potluck's scripts (sourced, not run).
export POTLUCK_CACHE="${POTLUCK_CACHE:-$HOME/.cache/potluck}"
export SYNAPSE_VERSION="1.163.2"
# The widget's UI builds its own standard library, for size (scripts/build.sh):
# that needs a nightly cargo and the library's source. Pinned, so every build
# of the same commit is the same.
export POTLUCK_UI_TOOLCHAIN="${POTLUCK_UI_TOOLCHAIN:-nightly-2026-05-19}"
export SYNAPSE_VENV="$POTLUCK_CACHE/synapse-venv"
export PATH="$HOME/.cargo/bin:$PATH"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
mkdir -p "$POTLUCK_CACHE"
