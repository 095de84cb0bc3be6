#!/usr/bin/env bash
# The one demo command: set up and start everything, then run the end-to-end story.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
node scripts/demo.ts
