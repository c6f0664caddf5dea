#!/usr/bin/env bash
# Create .venv and install comm-node with its test and cluster extras (tests/test_cluster*.py
# run the real NATS server), once (again when pyproject changes).
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
    "$venv/bin/python" -m pip install --quiet -e "$here[test,cluster]"
    echo "$want" > "$stamp"
fi
# Bytecode for the agent CLI's fast start, even where PYTHONDONTWRITEBYTECODE is set
# (Python still reads .pyc files it did not write itself).
"$venv/bin/python" -m compileall -q "$here/comm_node_tui" >/dev/null || true
