#!/usr/bin/env bash
# Install the pinned Claude Code CLI (the version comm-node is tested with) from npm into
# .cache/claude-code/VERSION inside the project: never globally, never the user's ~/.claude.
# Idempotent; fails with one clear line when Node/npm are missing or the install fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^TESTED_VERSION = "\(.*\)"$/\1/p' "$here/comm_node_tui/claude_code.py")"
prefix="${COMM_NODE_CLAUDE_CACHE:-$here/.cache/claude-code}/$version"
ok() { "$1" --version 2>/dev/null | grep -q "^$version "; }
for bin in "$prefix"/node_modules/@anthropic-ai/claude-code-*/claude "$prefix/node_modules/.bin/claude"; do
    if [ -x "$bin" ] && ok "$bin"; then exit 0; fi
done
if ! command -v npm >/dev/null 2>&1; then
    echo "install-claude-code: npm is not installed; Node.js and npm are needed to install Claude Code $version (apt-get install nodejs npm)" >&2
    exit 1
fi
mkdir -p "$prefix"
if ! npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$version" >"$prefix/npm.log" 2>&1; then
    echo "install-claude-code: npm install @anthropic-ai/claude-code@$version failed; see $prefix/npm.log" >&2
    exit 1
fi
for bin in "$prefix"/node_modules/@anthropic-ai/claude-code-*/claude "$prefix/node_modules/.bin/claude"; do
    if [ -x "$bin" ] && ok "$bin"; then exit 0; fi
done
echo "install-claude-code: Claude Code $version installed in $prefix but does not run (see $prefix/npm.log)" >&2
exit 1
