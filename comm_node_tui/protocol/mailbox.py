"""Outbox and inbox operations the agent CLI needs: write, list, find, mark read.

The engine (router) writes inboxes; the agent writes its outbox and only marks inbox
messages read, by moving them into `inbox/read/`.
"""

from __future__ import annotations

import os

from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.messages import (
    MessageFormatError,
    is_valid_id,
    read_message_file,
    render,
)
from comm_node_tui.protocol.paths import DomainPaths

INBOX_READ_LIMIT = 1024 * 1024


def write_outbox(paths: DomainPaths, meta: dict, body: str) -> str:
    """Atomically drop a message into the outbox; the file name is the message id."""
    os.makedirs(paths.outbox, mode=0o700, exist_ok=True)
    target = os.path.join(paths.outbox, f"{meta['id']}.md")
    atomic_write(target, render(meta, body))
    return target


def _entries(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [os.path.join(directory, n) for n in names if n.endswith(".md") and n[0] != "."]


def list_inbox(paths: DomainPaths, *, unread_only: bool = False) -> list[dict]:
    """Inbox messages oldest first, each {id, from, to, ..., read, body, path}."""
    found = [(p, False) for p in _entries(paths.inbox)]
    if not unread_only:
        found += [(p, True) for p in _entries(paths.inbox_read)]
    out = []
    for path, is_read in found:
        try:
            meta, body = read_message_file(path, INBOX_READ_LIMIT)
        except (OSError, MessageFormatError, ValueError) as exc:
            meta, body = {"type": "unreadable"}, f"(comm-node could not read this file: {exc})"
        out.append(message_record(meta, body, read=is_read, path=path))
    out.sort(key=lambda m: (str(m.get("created") or ""), str(m.get("id") or "")))
    return out


def message_record(meta: dict, body: str, *, read: bool, path: str) -> dict:
    """The stable JSON shape of a message (documented in docs/protocol.md)."""
    fallback_id = os.path.basename(path)[:-3]
    return {
        "id": meta.get("id") or fallback_id,
        "from": meta.get("from"),
        "to": meta.get("to") or [],
        "type": meta.get("type"),
        "task": meta.get("task"),
        "priority": meta.get("priority", "normal"),
        "token_budget": meta.get("token_budget"),
        "reply_to": meta.get("reply_to"),
        "created": meta.get("created"),
        "tokens": meta.get("tokens"),
        "read": read,
        "body": body,
        "path": path,
    }


def find_in_inbox(paths: DomainPaths, ident: str) -> tuple[str, bool]:
    """(path, already_read) of the message with this id, or a unique id prefix."""
    if not ident or "/" in ident or "\x00" in ident or ident.startswith("."):
        raise LookupError(f"'{ident}' is not a message id")
    exact = ident if is_valid_id(ident) else None
    candidates = []
    for directory, is_read in ((paths.inbox, False), (paths.inbox_read, True)):
        if exact:
            p = os.path.join(directory, f"{exact}.md")
            if os.path.isfile(p):
                return p, is_read
        for p in _entries(directory):
            if os.path.basename(p).startswith(ident):
                candidates.append((p, is_read))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LookupError(f"no message '{ident}' in the inbox")
    raise LookupError(f"'{ident}' matches {len(candidates)} messages; give more of the id")


def mark_read(paths: DomainPaths, path: str) -> str:
    os.makedirs(paths.inbox_read, mode=0o700, exist_ok=True)
    target = os.path.join(paths.inbox_read, os.path.basename(path))
    os.replace(path, target)
    return target
