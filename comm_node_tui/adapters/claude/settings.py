"""Merge comm-node's hooks into a domain's `.claude/settings.json`, and take them out again.

The user's settings and hooks are kept as they are; a backup is written before any change;
installing twice changes nothing the second time; uninstall removes only comm-node's hooks
(recognised by their command: `... comm-node hook` or `... -m comm_node_tui hook`).
"""

from __future__ import annotations

import json
import os
import time

from comm_node_tui.adapters.agent_cli import comm_node_command
from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.workspace.model import Domain

# Every event comm-node listens to; tool events match every tool.
EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "StopFailure",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
)
TOOL_EVENTS = ("PreToolUse", "PermissionRequest", "PostToolUse", "PostToolUseFailure")
TIMEOUT_S = 10
# The agent's own protocol calls (`comm-node send/lock/task ...`) must never stop at "This
# command requires approval" (default permission mode): allowed in the domain's settings.
# Only those: the operator's commands (approve, deny, inject, kill, restart, trust, budget
# grant, down ...) still ask, so an agent cannot answer another agent's prompt or stop it
# unseen. Both spellings, the prefix rule and the wildcard one Claude Code 2.1.330 offers.
AGENT_COMMANDS = (
    "send",
    "inbox",
    "read",
    "status",
    "whoami",
    "lock",
    "task",
    "budget show",
    "budget request",
    "artifact",
    "check",
)
ALLOW_RULES = tuple(
    rule
    for command in AGENT_COMMANDS
    for rule in (f"Bash(comm-node {command}:*)", f"Bash(comm-node {command} *)")
)


def hook_command() -> str:
    """An absolute command: Claude Code's environment may not have comm-node on PATH."""
    return f"{comm_node_command()} hook"


def is_ours(hook: object) -> bool:
    if not isinstance(hook, dict):
        return False
    cmd = hook.get("command")
    return (
        isinstance(cmd, str)
        and cmd.rstrip().endswith(" hook")
        and ("comm-node" in cmd or "comm_node_tui" in cmd)
    )


def settings_path(dom: Domain) -> str:
    return os.path.join(dom.path, ".claude", "settings.json")


def _load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise CommNodeError(
            f"{path}: not valid JSON ({exc}); fix it first, comm-node will not overwrite it"
        ) from None
    if not isinstance(data, dict):
        raise CommNodeError(f"{path}: must hold a JSON object")
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise CommNodeError(f"{path}: hooks: must be an object")
    return data


def _without_ours(hooks: dict) -> tuple[dict, int, int]:
    """(hooks without comm-node's, removed count, kept count)."""
    removed = kept = 0
    out: dict = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            out[event] = groups
            continue
        new_groups = []
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                new_groups.append(group)
                continue
            mine = [h for h in group["hooks"] if is_ours(h)]
            rest = [h for h in group["hooks"] if not is_ours(h)]
            removed += len(mine)
            kept += len(rest)
            if rest:
                new_groups.append({**group, "hooks": rest})
        if new_groups:
            out[event] = new_groups
    return out, removed, kept


def _write(path: str, data: dict, before: str | None) -> str | None:
    backup = None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if before is not None:
        backup = f"{path}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while os.path.exists(backup):
            n += 1
            backup = f"{path}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        atomic_write(backup, before, mode=0o644)
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode=0o644)
    return backup


def merged_settings(path: str) -> tuple[dict, dict, int]:
    """(the settings now, the settings with comm-node's hooks merged in, the user's hooks
    kept): what `install_hooks` would write, for previews."""
    data = _load(path)
    hooks, _removed, kept = _without_ours(data.get("hooks", {}))
    command = {"type": "command", "command": hook_command(), "timeout": TIMEOUT_S}
    for event in EVENTS:
        group = (
            {"matcher": "*", "hooks": [command]} if event in TOOL_EVENTS else {"hooks": [command]}
        )
        hooks.setdefault(event, []).append(group)
    new = {**data, "hooks": hooks}
    perms = data.get("permissions")
    if perms is None or isinstance(perms, dict):
        perms = dict(perms or {})
        allow = perms.get("allow")
        allow = list(allow) if isinstance(allow, list) else []
        allow += [rule for rule in ALLOW_RULES if rule not in allow]
        perms["allow"] = allow
        new["permissions"] = perms
    return data, new, kept


def settings_text(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def install_hooks(dom: Domain) -> dict:
    path = settings_path(dom)
    data, new, kept = merged_settings(path)
    before = settings_text(data) if os.path.exists(path) else None
    changed = new != data
    backup = _write(path, new, before) if changed else None
    return {
        "domain": dom.name,
        "path": path,
        "added": len(EVENTS) if changed else 0,
        "kept": kept,
        "backup": backup,
        "changed": changed,
    }


def uninstall_hooks(dom: Domain) -> dict:
    path = settings_path(dom)
    if not os.path.exists(path):
        return {"domain": dom.name, "path": path, "removed": 0, "backup": None}
    data = _load(path)
    before = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    hooks, removed, _kept = _without_ours(data.get("hooks", {}))
    new = dict(data)
    perms = data.get("permissions")
    if isinstance(perms, dict) and isinstance(perms.get("allow"), list):
        allow = [r for r in perms["allow"] if r not in ALLOW_RULES]
        removed += len(perms["allow"]) - len(allow)
        new["permissions"] = {**perms, "allow": allow}
        if not allow:
            del new["permissions"]["allow"]
        if not new["permissions"]:
            del new["permissions"]
    if not removed:
        return {"domain": dom.name, "path": path, "removed": 0, "backup": None}
    if hooks:
        new["hooks"] = hooks
    else:
        new.pop("hooks", None)
    backup = _write(path, new, before)
    return {"domain": dom.name, "path": path, "removed": removed, "backup": backup}
