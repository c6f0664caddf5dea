#!/usr/bin/env bash
# Create .venv and install comm-node with its test, web and cluster extras (tests/test_web.py
# drives the system's Chromium; tests/test_cluster*.py run the real NATS server), once (again
# when pyproject changes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-from"
want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    # web: `comm-node web` and its tests (textual-serve, aiohttp); playwright in the test
    # extra drives the system's Chromium and must not fetch a browser of its own
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/python" -m pip install --quiet -e "$here[test,web,cluster]"
    echo "$want" > "$stamp"
fi
# Bytecode for the agent CLI's fast start, even where PYTHONDONTWRITEBYTECODE is set
# (Python still reads .pyc files it did not write itself).
"$venv/bin/python" -m compileall -q "$here/comm_node_tui" >/dev/null || true
