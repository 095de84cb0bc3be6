#!/usr/bin/env bash
# The one test command (README, `npm test`, .ci/run): installs and starts what is missing, then
# typecheck, lint, migrations, and every test against the real services.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
echo "[test] typecheck"; npx --no-install tsc --noEmit -p .
echo "[test] lint"; npx --no-install eslint .
echo "[test] migrate"; node db/migrate.ts up
echo "[test] tests"
node --test --test-concurrency=2 --test-timeout=900000 ${ASTRY_TEST_FILES:-'test/**/*.test.ts'}
