# Shared settings for Potluck's scripts (sourced, not run).
export POTLUCK_CACHE="${POTLUCK_CACHE:-$HOME/.cache/potluck}"
export SYNAPSE_VERSION="1.163.2"
export SYNAPSE_VENV="$POTLUCK_CACHE/synapse-venv"
export PATH="$HOME/.cargo/bin:$PATH"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
mkdir -p "$POTLUCK_CACHE"
