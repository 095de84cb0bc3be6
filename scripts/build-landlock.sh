#!/usr/bin/env bash
# Builds the Landlock launcher (sandbox/landlock/launcher.c) as
# $ASTRY_CACHE/bin/astry-landlock-<first 12 hex of the source's sha256>, the name sandbox/confinement.ts
# looks for, so a binary built from other source is never run. A no-op when that file exists.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
src="$ROOT/sandbox/landlock/launcher.c"
out="$ASTRY_CACHE/bin/astry-landlock-$(sha256sum "$src" | cut -c1-12)"
[ -x "$out" ] && exit 0
mkdir -p "$ASTRY_CACHE/bin"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$tmp" "$src"
chmod 0755 "$tmp"
mv -f "$tmp" "$out" # a rename: a concurrent start never sees half a binary
printf '[setup] built %s\n' "$out"
