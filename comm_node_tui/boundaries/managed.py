"""The files comm-node writes and manages: never a boundary violation, never a conflict.

`comm-node init` writes, in each domain's folder, a role section in CLAUDE.md, the hooks in
`.claude/settings.json` (a backup of the user's beside it), `.gitignore` lines and the
protocol folders under `.comm-node/`; at the workspace's root comm-node.toml, the native
tasks file and `.comm-node/`; and a domain created as a git repository or worktree shows in
the workspace's repository as one path, the folder itself (a nested `.git`). A domain whose
scope is `src/**` did not change any of these: comm-node did, so `comm-node check` right
after init, and the pre-commit guard on init's output, find nothing.

Stdlib only: the pre-commit guard's check and the engine's conflict check both ask.
"""

from __future__ import annotations

import fnmatch
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.workspace.model import Workspace

# Relative to a domain's folder (or a working tree's root): each domain's own copy, which
# differs from domain to domain on purpose (its role section, its hooks).
PER_DOMAIN = ("CLAUDE.md", ".claude/settings.json", ".claude/settings.local.json")
PER_DOMAIN_GLOBS = (".claude/settings.json.bak-*",)
RUNTIME_DIRS = (".comm-node", ".git")  # the protocol folders; a nested repository's own
# init only appends its lines to it: a boundary question never, but two agents' edits to
# the same .gitignore are a real conflict, so the conflict check does not skip it
GITIGNORE = ".gitignore"


def is_managed_rel(rel: str) -> bool:
    """Whether `rel` (relative to a domain's folder or a working tree, '/'-separated) is
    one of the per-domain files comm-node writes."""
    rel = rel.replace(os.sep, "/").strip("/")
    if rel.split("/", 1)[0] in RUNTIME_DIRS:
        return True
    return rel in PER_DOMAIN or any(fnmatch.fnmatchcase(rel, g) for g in PER_DOMAIN_GLOBS)


def is_managed(ws: Workspace, path: str) -> bool:
    """Whether the absolute `path` is a file (or folder) comm-node writes and manages."""
    path = path.rstrip(os.sep) or os.sep
    if path in (ws.paths.config, _tasks_file(ws)) or _under(path, ws.paths.state):
        return True
    if _under(path, ws.root) and _managed_below(os.path.relpath(path, ws.root)):
        return True
    for d in ws.domains.values():
        base = d.path.rstrip(os.sep)
        if path == base:
            # the folder as one path: a nested repository or worktree seen from outside
            return os.path.lexists(os.path.join(base, ".git"))
        if _under(path, base) and _managed_below(os.path.relpath(path, base)):
            return True
    return False


def _managed_below(rel: str) -> bool:
    return is_managed_rel(rel) or rel == GITIGNORE


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _tasks_file(ws: Workspace) -> str:
    name = ws.settings.tasks.file()
    return os.path.join(ws.root, name) if name else ""
