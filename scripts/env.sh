# Sourced by every script: where the cached toolchain lives, and the PATH that uses it.
export ASTRY_CACHE=${ASTRY_CACHE:-$HOME/.cache/astry}
export PATH="$ASTRY_CACHE/node24/node_modules/.bin:$ASTRY_CACHE/bin:$PATH"
