"""Who owns a file, and whether one domain may import it.

Ownership: a file belongs to the domain whose scope matches it (the deepest domain directory
first). An entry of `allowed_imports` / `forbidden_imports` is one of:
- `NAME`: everything domain NAME owns;
- `NAME:GLOB`: a gitignore-style glob relative to domain NAME's directory;
- `GLOB`: a gitignore-style glob relative to the workspace root.
A file may import anything in its own domain's scope. Anything else it imports from the
workspace must match no `forbidden_imports` entry and, when `allowed_imports` is not empty,
at least one of its entries. Imports that leave the workspace (the standard library,
third-party packages) are not judged.
"""

from __future__ import annotations

import os
import re

from comm_node_tui.protocol.globs import Glob
from comm_node_tui.workspace.model import Domain, Workspace

# An allowed/forbidden entry as written, and what it matches: a domain name or a glob's regex.
_Entry = tuple[str, str | re.Pattern[str]]


def _key(path: str) -> str:
    return path.lstrip("/")


class Rules:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ordered = sorted(ws.domains.values(), key=lambda d: len(d.path), reverse=True)
        self._scopes: list[tuple[Domain, list[re.Pattern]]] = [
            (d, [re.compile(rx) for rx in d.scope_regex] or _scope_patterns(d)) for d in ordered
        ]
        self._patterns = {d.name: ps for d, ps in self._scopes}
        self._owner: dict[str, str | None] = {}
        self._entries: dict[str, list[_Entry]] = {}
        for d in ws.domains.values():
            self._entries[d.name + ":allowed"] = [self._entry(e) for e in d.allowed_imports]
            self._entries[d.name + ":forbidden"] = [self._entry(e) for e in d.forbidden_imports]

    def _entry(self, entry: str) -> _Entry:
        name, sep, glob = entry.partition(":")
        if not sep and entry in self.ws.domains:
            return entry, entry
        if sep and name in self.ws.domains:
            base = self.ws.domains[name].path
            return entry, re.compile(Glob(base, glob or "**").regex())
        return entry, re.compile(Glob(self.ws.root, entry).regex())

    def owner(self, path: str) -> str | None:
        try:
            return self._owner[path]
        except KeyError:
            pass
        key = _key(path)
        found = None
        for d, patterns in self._scopes:  # scope regexes hold the absolute base path
            if any(p.match(key) for p in patterns):
                found = d.name
                break
        self._owner[path] = found
        return found

    def in_scope(self, dom: Domain, path: str) -> bool:
        key = _key(path)
        return any(p.match(key) for p in self._patterns[dom.name])

    def _match(self, entry: _Entry, path: str, owner: str | None) -> bool:
        what = entry[1]
        if isinstance(what, str):
            return owner == what
        return bool(what.match(_key(path)))

    def judge(self, dom: Domain, target: str) -> tuple[str, str | None] | None:
        """None when `dom` may import `target`, else (the rule broken, the target's owner)."""
        if self.in_scope(dom, target):
            return None
        owner = self.owner(target)
        for entry in self._entries[dom.name + ":forbidden"]:
            if self._match(entry, target, owner):
                return f"forbidden_imports: {entry[0]}", owner
        allowed = self._entries[dom.name + ":allowed"]
        if allowed and not any(self._match(e, target, owner) for e in allowed):
            listed = ", ".join(e[0] for e in allowed)
            return f"not in allowed_imports [{listed}]", owner
        return None


def _scope_patterns(d: Domain) -> list[re.Pattern]:
    return [re.compile(Glob(d.path, s).regex()) for s in d.scope]


def relative(ws: Workspace, path: str) -> str:
    """A path as the operator reads it: relative to the workspace when inside it."""
    rel = os.path.relpath(path, ws.root)
    return path if rel.startswith("..") else rel
