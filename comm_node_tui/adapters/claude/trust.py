"""Recording Claude Code's folder trust for domain folders, with the operator's consent.

A folder Claude Code has not been told to trust opens with the dialog "Quick safety check: Is
this a project you created or one you trust?", whose highlighted answer is "No, exit": an
agent started there waits for a person, and comm-node never answers it (Enter would make
Claude Code exit). `comm-node trust` records the answer the operator gives, in the file where
Claude Code keeps it: `projects[<folder>].hasTrustDialogAccepted` in `$CLAUDE_CONFIG_DIR/
.claude.json`, or `~/.claude.json` without that variable (2.1.330). Trust recorded for a
parent folder does not cover a child that is its own git repository, so each domain folder
is recorded. The file is merged (everything else kept) and backed up first.
"""

from __future__ import annotations

import json
import os
import time

from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.fileio import atomic_write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_BYTES = 16 * 1024 * 1024


def config_file(env: Mapping[str, str] | None = None) -> str:
    """The global Claude Code file the agents read (their environment: `env`)."""
    environ = os.environ if env is None else env
    base = environ.get("CLAUDE_CONFIG_DIR")
    if base:
        return os.path.join(base, ".claude.json")
    return os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".claude.json")


def _load(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    if len(raw) > MAX_BYTES:
        raise CommNodeError(f"{path}: over {MAX_BYTES} bytes; not changed")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise CommNodeError(f"{path}: not valid JSON ({exc}); not changed") from None
    if not isinstance(data, dict) or not isinstance(data.get("projects", {}), dict):
        raise CommNodeError(f"{path}: projects: not a JSON object; not changed")
    return data


def git_root(folder: str) -> str | None:
    """The top of the git repository `folder` is in, if any (a `.git` directory or file)."""
    current = os.path.realpath(folder)
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def with_git_roots(folders: list[str]) -> list[str]:
    """The folders and the git repositories they are in: in a repository, Claude Code 2.1.330
    asks again ("This folder pre-approves N tool permissions ...") unless its top is trusted
    too, even when the folder itself is."""
    out = list(folders)
    for folder in folders:
        root = git_root(folder)
        if root and root not in out and os.path.realpath(folder) != root:
            out.append(root)
    return out


def untrusted(folders: list[str], path: str) -> list[str]:
    """The folders Claude Code would ask about."""
    projects = _load(path).get("projects", {})
    out = []
    for folder in folders:
        keys = {os.path.abspath(folder), os.path.realpath(folder)}
        entries = [projects.get(k) for k in keys]
        if not any(isinstance(e, dict) and e.get("hasTrustDialogAccepted") for e in entries):
            out.append(folder)
    return out


def record_trust(folders: list[str], path: str) -> dict:
    """Mark `folders` trusted in `path` (backup written first); what was done."""
    data = _load(path)
    todo = untrusted(folders, path)
    if not todo:
        return {"file": path, "trusted": [], "backup": None}
    backup = None
    if os.path.exists(path):
        backup = f"{path}.bak-comm-node-{time.strftime('%Y%m%d-%H%M%S')}"
        with open(path, "rb") as fh:
            atomic_write(backup, fh.read(), mode=0o600)
    projects = data.setdefault("projects", {})
    for folder in todo:
        # Claude Code keys projects on its working directory (symlinks resolved).
        for key in {os.path.abspath(folder), os.path.realpath(folder)}:
            entry = projects.get(key)
            if not isinstance(entry, dict):
                entry = projects[key] = {}
            entry["hasTrustDialogAccepted"] = True
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode=0o600)
    return {"file": path, "trusted": todo, "backup": backup}
