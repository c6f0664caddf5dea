"""Mail into the agent: what the hooks say about unread messages (lean: json + os only)."""

from __future__ import annotations

import os

from comm_node_tui.protocol.messages import MessageFormatError, read_message_file
from comm_node_tui.protocol.paths import DomainPaths

IMPORTANT = ("high", "urgent")
MAX_CONTEXT = 2000  # well under Claude Code's 10,000-character limit


def unread(paths: DomainPaths, limit: int = 200) -> list[dict]:
    """Unread messages, oldest first: {id, from, type, priority, subject}."""
    try:
        names = sorted(
            n for n in os.listdir(paths.inbox) if n.endswith(".md") and not n.startswith(".")
        )
    except OSError:
        return []
    out = []
    for name in names[-limit:]:
        try:
            meta, body = read_message_file(os.path.join(paths.inbox, name), 256 * 1024)
        except (OSError, MessageFormatError, ValueError):
            continue
        first = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
        out.append(
            {
                "id": meta.get("id") or name[:-3],
                "from": meta.get("from"),
                "type": meta.get("type"),
                "priority": meta.get("priority", "normal"),
                "subject": str(meta.get("subject") or first)[:100],
            }
        )
    return out


def summary(messages: list[dict]) -> str:
    lines = [
        f"comm-node: {len(messages)} unread important message{'s' if len(messages) != 1 else ''}:"
    ]
    for m in messages[:8]:
        lines.append(
            f"- [{m['priority']}] {m['id']} from {m['from']} ({m['type']}): {m['subject']}"
        )
    if len(messages) > 8:
        lines.append(f"- and {len(messages) - 8} more")
    lines.append("Read them with `comm-node inbox` and `comm-node read ID`.")
    text = "\n".join(lines)
    return text[:MAX_CONTEXT]
