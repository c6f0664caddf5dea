"""The edit guard: may this domain edit this path? Scope and other domains' exclusive locks.

On the hook path, so it matches with the regexes compiled earlier (scope regexes in the
config cache, lock regexes in locks.json), and the common ones (a literal path then "all
below", "anything below", "this or below": `**`, `src/**`, the auto-lock's `/src/a.py`)
without `re`, whose import costs the hook about a third of its time (issue 22).
"""

from __future__ import annotations

import os
import time

from comm_node_tui.protocol import jsonfast as json
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


# The tails protocol/globs.py glob_regex puts after a literal prefix that `_simple` reads.
_TAILS = ("", ".", "(?:/|$)")
_META = frozenset(".^$*+?{}[]|()")


def _simple(rx: str) -> tuple[str, str] | None:
    """(literal prefix, tail) when `rx` is `^` + escaped literal text + one of _TAILS, else
    None. Escapes are re.escape's: a backslash before a character that is not a letter or a
    digit stands for that character (`\\d`, `\\n` and the like make it None)."""
    if not rx.startswith("^"):
        return None
    out: list[str] = []
    i, n = 1, len(rx)
    while i < n:
        c = rx[i]
        if c == "\\":
            if i + 1 >= n or (rx[i + 1].isascii() and rx[i + 1].isalnum()):
                return None
            out.append(rx[i + 1])
            i += 2
        elif c in _META:
            break
        else:
            out.append(c)
            i += 1
    tail = rx[i:]
    return ("".join(out), tail) if tail in _TAILS else None


def matches(rx: str, key: str) -> bool:
    """`re.match(rx, key) is not None`; ValueError for an invalid regex."""
    simple = _simple(rx)
    if simple is None:
        import re

        try:
            return re.match(rx, key) is not None
        except re.error as exc:
            raise ValueError(f"{rx!r}: not a valid regex ({exc})") from None
    prefix, tail = simple
    if not key.startswith(prefix):
        return False
    rest = key[len(prefix) :]
    if tail == ".":  # one more character, not a newline (no DOTALL)
        return rest[:1] not in ("", "\n")
    if tail == "(?:/|$)":  # `$` also matches before a final newline
        return rest in ("", "\n") or rest[0] == "/"
    return True


def in_scope(dom: Domain, path: str) -> bool:
    key = _key(path)
    return any(matches(rx, key) for rx in dom.scope_regex)


def owner_of(ws: Workspace, path: str, exclude: str) -> str | None:
    for other in ws.domains.values():
        if other.name != exclude and in_scope(other, path):
            return other.name
    return None


def lock_holder(ws: Workspace, dom: Domain, path: str) -> dict | None:
    """An unexpired exclusive lock of another domain that covers `path` (the first in
    locks.json's order). Only the locks filed under this path's prefixes in locks.index
    (coordination/store.py), so the cost does not grow with the locks held elsewhere; the
    whole file when the index is not of it."""
    from comm_node_tui.coordination.store import locks_for

    key = _key(path)
    records = locks_for(ws.paths.state, key)
    if records is None:
        try:
            with open(os.path.join(ws.paths.state, "locks.json"), encoding="utf-8") as fh:
                data = json.load(fh)
        except (RecursionError, OSError, ValueError):
            return None
        records = data.get("locks", []) if isinstance(data, dict) else []
    now = time.time()
    for lock in records:
        try:
            if (
                lock["holder"] != dom.name
                and lock.get("exclusive", True)
                and float(lock["expires"]) > now
                and matches(lock["regex"], key)
            ):
                return lock
        except (KeyError, TypeError, ValueError):
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
