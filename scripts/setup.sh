#!/usr/bin/env bash
# Installs everything Potluck needs to build, test and run its demo on Debian 12.
# Idempotent and cached: a second run takes seconds. Nothing here needs internet
# beyond the package registries (apt, crates.io, npm, PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step() { printf '\n== %s\n' "$*"; }

step "apt packages (chromium for tests, build tools)"
need_apt=()
# espeak-ng speaks and opus-tools encodes the test speech (voice messages are Ogg Opus).
# Mesa's lavapipe (a Vulkan GPU in software) runs WGSL kernels in native tests.
for pkg in chromium chromium-driver pkg-config espeak-ng opus-tools mesa-vulkan-drivers libvulkan1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

step "rust wasm target"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "the UI's toolchain ($POTLUCK_UI_TOOLCHAIN, with the standard library's source)"
# Only the release UI's size depends on it: without it scripts/build.sh
# builds the UI on stable Rust, larger, and says so.
ui_library() {
  echo "$(RUSTUP_AUTO_INSTALL=0 rustc "+$POTLUCK_UI_TOOLCHAIN" --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library"
}
# Installing adds rust-src to a toolchain that lacks it.
if [ -d "$(ui_library)" ] ||
  rustup toolchain install "$POTLUCK_UI_TOOLCHAIN" --profile minimal --component rust-src; then
  # The standard library's own dependencies, for the offline build.
  cargo "+$POTLUCK_UI_TOOLCHAIN" fetch --locked --manifest-path "$(ui_library)/Cargo.toml" ||
    echo "warning: the standard library's dependencies could not be fetched; the release UI will be built on stable Rust" >&2
else
  echo "warning: $POTLUCK_UI_TOOLCHAIN could not be installed; the release UI will be built on stable Rust" >&2
fi

step "wasm-bindgen CLI at the version Cargo.lock pins"
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # --locked fails on the mirror (webpki-roots), so resolve fresh.
  cargo install wasm-bindgen-cli --version "$want"
fi

step "npm packages (matrix-widget-api, matrix-js-sdk, esbuild, binaryen, playwright-core)"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

step "Synapse (virtualenv in $POTLUCK_CACHE)"
if [ ! -x "$SYNAPSE_VENV/bin/python" ] || ! "$SYNAPSE_VENV/bin/python" -c 'import synapse' 2>/dev/null; then
  python3 -m venv "$SYNAPSE_VENV"
  "$SYNAPSE_VENV/bin/pip" install -q "matrix-synapse==$SYNAPSE_VERSION"
fi

step "cargo dependencies"
cargo fetch --locked

# A fresh clone builds its own crates from source, but need not compile
# candle, wgpu and yew again for every clone: its target/ is a link to one
# build cache (cargo keeps each clone's own crates apart by their path). Set
# POTLUCK_SHARED_TARGET=0 for a target/ of its own. The cache is emptied when
# it outgrows POTLUCK_TARGET_CACHE_GB (30 by default).
shared_target="$POTLUCK_CACHE/target"
if [ ! -e target ] && [ "${POTLUCK_SHARED_TARGET:-1}" = 1 ]; then
  step "build cache: target -> $shared_target"
  mkdir -p "$shared_target"
  size_gb=$(du -s --block-size=1G "$shared_target" | cut -f1)
  if [ "$size_gb" -gt "${POTLUCK_TARGET_CACHE_GB:-30}" ]; then
    echo "the build cache holds ${size_gb} GB: emptied"
    rm -rf "$shared_target" && mkdir -p "$shared_target"
  fi
  ln -s "$shared_target" target
fi
echo "setup done"
