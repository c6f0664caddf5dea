"""The edit guard: may this domain edit this path? Scope and other domains' exclusive locks.

On the hook path, so it uses only `re` and the regexes compiled earlier (scope regexes in the
config cache, lock regexes in locks.json).
"""

from __future__ import annotations

import json
import os
import re
import time

from comm_node_tui.workspace.model import Domain, Workspace

EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")


def target_path(tool_input: dict, cwd: str) -> str | None:
    raw = tool_input.get("file_path") or tool_input.get("notebook_path") or tool_input.get("path")
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        return None
    path = raw if os.path.isabs(raw) else os.path.join(cwd, raw)
    # realpath: a symlink inside the scope that points outside it is judged by its target;
    # `..` is resolved too.
    return os.path.realpath(path)


def _key(path: str) -> str:
    return path.lstrip("/")


def in_scope(dom: Domain, path: str) -> bool:
    key = _key(path)
    return any(re.match(rx, key) for rx in dom.scope_regex)


def owner_of(ws: Workspace, path: str, exclude: str) -> str | None:
    for other in ws.domains.values():
        if other.name != exclude and in_scope(other, path):
            return other.name
    return None


def lock_holder(ws: Workspace, dom: Domain, path: str) -> dict | None:
    """An unexpired exclusive lock of another domain that covers `path`."""
    try:
        with open(os.path.join(ws.paths.state, "locks.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (RecursionError, OSError, ValueError):
        return None
    now = time.time()
    key = _key(path)
    for lock in data.get("locks", []) if isinstance(data, dict) else []:
        try:
            if (
                lock["holder"] != dom.name
                and lock.get("exclusive", True)
                and float(lock["expires"]) > now
                and re.match(lock["regex"], key)
            ):
                return lock
        except (KeyError, TypeError, ValueError, re.error):
            continue
    return None


def check(ws: Workspace, dom: Domain, path: str) -> str | None:
    """None when the edit is allowed, else the reason the agent is told."""
    if path.startswith(dom.path + os.sep):
        shown = os.path.relpath(path, dom.path)
    elif path.startswith(ws.root + os.sep):
        shown = os.path.relpath(path, ws.root)
    else:
        shown = path
    if not in_scope(dom, path):
        owner = owner_of(ws, path, dom.name)
        if owner:
            return (
                f"{shown} belongs to domain {owner}; ask it with "
                f'`comm-node send --to {owner} --type request "..."`'
            )
        return (
            f"{shown} is outside {dom.name}'s scope ({', '.join(dom.scope)}); "
            "edit only files of your domain, or ask the operator "
            "(`comm-node send --to operator ...`)"
        )
    held = lock_holder(ws, dom, path)
    if held is not None:
        why = f" ({held['reason']})" if held.get("reason") else ""
        return (
            f"{shown} is locked by {held['holder']} ('{held['pattern']}'{why}) until "
            f"{held.get('expires_at', '?')}; wait, or ask it with "
            f"`comm-node send --to {held['holder']} ...`"
        )
    return None
