#!/usr/bin/env bash
# SCIM conformance: runs scim2-tester (PyPI, the python-scim2 project: discovery, CRUD, every
# attribute through PATCH add/replace/remove, attributes/excludedAttributes, .search) against our
# /scim/v2 on a fresh database. Exit 0: every check passed (or was skipped for an allowed reason);
# 1: a check failed; 77: the tester could not be installed here (no network and no cached venv).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/env.sh"
cd "$ROOT"

VENV="$ASTRY_CACHE/scim2-tester-venv"
PINS=(scim2-tester==0.5.2 'scim2-client[httpx2]==0.13.2' scim2-models==0.12.3)
if ! "$VENV/bin/python" -c 'import scim2_tester, httpx2' 2>/dev/null; then
  echo "[scim-conformance] installing ${PINS[*]} into $VENV"
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"; }; then
    echo "[scim-conformance] scim2-tester could not be installed: conformance run skipped" >&2
    exit 77
  fi
fi

ready=$(mktemp)
node test/fixtures-scim/serve.ts >"$ready" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$ready"' EXIT
for _ in $(seq 1 200); do
  [ -s "$ready" ] && break
  kill -0 "$server" 2>/dev/null || { echo "[scim-conformance] SCIM server failed to start" >&2; exit 1; }
  sleep 0.1
done

"$VENV/bin/python" - "$ready" <<'PY'
import json
import sys
from collections import Counter

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

# Skips we accept, by reason: RFC 7644 §3.4.3 lets a server answer 501 to /.search across resource types.
ALLOWED_SKIPS = ("searching several resource types at once",)

endpoint = json.loads(open(sys.argv[1]).read())
client = Client(base_url=endpoint["baseUrl"], headers={"Authorization": f"Bearer {endpoint['token']}"}, timeout=30)
results = check_server(SyncSCIMClient(client), raise_exceptions=False)
failed = []
for r in results:
    line = f"{r.status.name:8} {r.resource_type or '-':6} {r.title}: {(r.reason or '').splitlines()[0] if r.reason else ''}"
    print(line)
    if r.status == Status.SKIPPED and any(a in (r.reason or "") for a in ALLOWED_SKIPS):
        continue
    if r.status not in (Status.SUCCESS,):
        failed.append(line)
counts = Counter(r.status.name for r in results)
print(f"[scim-conformance] scim2-tester: {dict(counts)}")
if failed:
    print("[scim-conformance] FAILED:\n" + "\n".join(failed), file=sys.stderr)
    sys.exit(1)
print("[scim-conformance] all checks passed")
PY
