"""The git pre-commit guard: `comm-node hooks install --git` / `uninstall --git`.

The hook runs `comm-node check --staged` on the repository being committed and blocks the
commit when it finds violations. A pre-commit hook that was there before is kept, renamed to
`pre-commit.before-comm-node`, and still runs first; uninstalling puts it back. The hooks
directory is git's own answer (`core.hooksPath` honoured). Bypass: `git commit --no-verify`.
"""

from __future__ import annotations

import os
import shlex
import sys

from comm_node_tui.protocol.fileio import atomic_write

MARK = "# comm-node pre-commit guard"
CHAINED = "pre-commit.before-comm-node"


def hooks_dir(top: str) -> str:
    from comm_node_tui.boundaries.gitfiles import _run

    path = _run(top, "rev-parse", "--git-path", "hooks").strip()
    return os.path.realpath(os.path.join(top, path))


def script(workspace: str) -> str:
    cmd = shlex.join([sys.executable, "-m", "comm_node_tui"])
    return f"""#!/bin/sh
{MARK} (installed by `comm-node hooks install --git`; bypass: git commit --no-verify)
hooks=$(dirname "$0")
if [ -x "$hooks/{CHAINED}" ]; then
  "$hooks/{CHAINED}" "$@" || exit $?
fi
top=$(git rev-parse --show-toplevel) || exit 1
if ! {cmd} --version >/dev/null 2>&1; then
  echo "comm-node pre-commit: cannot run {cmd}; reinstall with" \\
       "'comm-node hooks install --git' or bypass with 'git commit --no-verify'" >&2
  exit 1
fi
exec {cmd} check --staged --hook --repo "$top" --workspace {shlex.quote(workspace)}
"""


def _ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return MARK in fh.read(4096)
    except OSError:
        return False


def install(top: str, workspace: str) -> dict:
    d = hooks_dir(top)
    os.makedirs(d, exist_ok=True)
    hook = os.path.join(d, "pre-commit")
    chained = None
    if os.path.lexists(hook) and not _ours(hook):
        os.replace(hook, os.path.join(d, CHAINED))  # keep the user's hook; it runs first
    if os.path.lexists(os.path.join(d, CHAINED)):
        chained = os.path.join(d, CHAINED)
    atomic_write(hook, script(workspace), mode=0o755)
    return {"repo": top, "hook": hook, "chained": chained}


def uninstall(top: str) -> dict:
    d = hooks_dir(top)
    hook = os.path.join(d, "pre-commit")
    removed = False
    if _ours(hook):
        os.unlink(hook)
        removed = True
    restored = None
    old = os.path.join(d, CHAINED)
    if os.path.lexists(old) and not os.path.lexists(hook):
        os.replace(old, hook)
        restored = hook
    return {"repo": top, "hook": hook, "removed": removed, "restored": restored}
