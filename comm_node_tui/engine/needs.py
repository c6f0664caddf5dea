"""What waits on the human: one ranked list of typed items, derived from the engine's state.

An item is something only the operator can settle: a dialog on an agent's screen (a
permission prompt first of all), a message sent `--to operator` and not yet read, an agent
lost, a budget spent, a task an agent gave up on. Everything here is derived, nothing is
stored: the list is computed again with every World (engine/world.py `snapshot`), so an item
goes away by itself when its cause does (the prompt answered, the message read, the budget
granted). What the room hides (dismissed) or what was already announced (notifications) is
kept by whoever shows or announces it, by the item's `key`: a key names one occurrence, so
a changed prompt or a new failure is a new key.

A paused agent is not an item: the operator paused it. A stuck or silent agent is not
either: the watchdog's alert says so, and it often ends by itself.

`what` is the agent's text (a tool's command, a message's subject, a failure's reason):
untrusted, plain text, never markup; cut to one line here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from comm_node_tui.engine.agent_state import AgentState, Health
from comm_node_tui.engine.world_views import AgentView, BudgetView
from comm_node_tui.protocol.paths import DomainPaths

WHAT_CHARS = 200


class NeedKind(StrEnum):
    PERMISSION = "permission"  # a permission prompt: approve or deny
    DIALOG = "dialog"  # another dialog on its screen (trust, API key, a choice): attach
    QUESTION = "question"  # a message to the operator, unread
    LOST = "lost"  # its process or pane gone for heartbeat_lost_s
    BUDGET = "budget"  # its work or communication budget is spent
    FAILED = "failed"  # it failed a task (`comm-node task fail`)


# Lower comes first: an agent held by a dialog (a permission prompt above all), a question,
# then what stopped an agent (lost, a budget spent), then failures; oldest first in a kind.
RANK: Mapping[NeedKind, int] = {
    NeedKind.PERMISSION: 0,
    NeedKind.DIALOG: 1,
    NeedKind.QUESTION: 2,
    NeedKind.LOST: 3,
    NeedKind.BUDGET: 4,
    NeedKind.FAILED: 5,
}


@dataclass(frozen=True, slots=True)
class Need:
    kind: NeedKind
    agent: str
    what: str  # one line of the agent's text: never markup
    since: float | None  # epoch seconds; None when nothing says when it began
    key: str  # stable while the same thing waits; a new occurrence has a new key
    ref: str | None = None  # the message id (question) or task id (failed)

    def to_json(self) -> dict:
        return {
            "kind": str(self.kind),
            "agent": self.agent,
            "what": self.what,
            "since": self.since,
            "key": self.key,
            "ref": self.ref,
        }


def one_line(text: object, limit: int = WHAT_CHARS) -> str:
    """The first non-blank line, control characters out, cut to `limit`."""
    s = text if isinstance(text, str) else "" if text is None else str(text)
    first = next((ln.strip() for ln in s.splitlines() if ln.strip()), "")
    first = "".join(c if c.isprintable() else " " for c in first)
    return first if len(first) <= limit else first[: limit - 1] + "…"


def epoch(text: object) -> float | None:
    """An ISO time (as the protocol writes them) as epoch seconds, None when unreadable."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def permission_key(agent: str, status: Mapping) -> str:
    """The key of an agent's permission prompt: which tool and what it runs, as its hooks
    last reported them. An answer is checked against it (operator/actions.py): the operator
    approves the prompt they read, never one that took its place."""
    tool = one_line(status.get("tool"), 60)
    detail = one_line(status.get("tool_detail"))
    return f"permission:{agent}:{_digest(tool, detail)}"


def _digest(*parts: str) -> str:
    # the built-in sha1 where there is one, imported here: hashlib's import (OpenSSL,
    # blake2) cost every `status` its time, for a prompt that is seldom there; same digest
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha1
    return sha1("\x00".join(parts).encode("utf-8", "replace")).hexdigest()[:10]


def ranked(items: Iterable[Need]) -> tuple[Need, ...]:
    """By kind's rank, then oldest first (unknown times last), then by key (stable)."""
    return tuple(
        sorted(
            items,
            key=lambda n: (RANK[n.kind], n.since is None, n.since or 0.0, n.key),
        )
    )


# ---- each source -----------------------------------------------------------------------
def agent_needs(agent: AgentView, status: Mapping) -> list[Need]:
    """A dialog on its screen (the hooks' PermissionRequest or the screen), or lost."""
    out: list[Need] = []
    dialog = agent.dialog
    waiting = agent.state == AgentState.WAITING or dialog is not None
    if waiting and agent.state not in (AgentState.DEAD, AgentState.ENDED):
        tool = one_line(status.get("tool"), 60)
        detail = one_line(status.get("tool_detail"))
        permission = dialog == "permission" or (dialog is None and bool(tool))
        if permission:
            what = f"{tool or 'a tool'}: {detail}" if detail else (tool or "a permission prompt")
            key = permission_key(agent.name, status)
            kind = NeedKind.PERMISSION
        else:
            what = (
                f"a {dialog} dialog on its screen"
                if dialog
                else "it waits on a dialog on its screen (attach to see it)"
            )
            key = f"dialog:{agent.name}:{dialog or 'waiting'}"
            kind = NeedKind.DIALOG
        pane = agent.pane
        since = pane.screen_since if pane is not None and pane.screen_since else None
        out.append(
            Need(kind, agent.name, one_line(what), since or epoch(agent.last_heartbeat), key)
        )
    if agent.health == Health.LOST:
        out.append(
            Need(
                NeedKind.LOST,
                agent.name,
                "its agent is gone (locks and claims released): restart it",
                epoch(agent.last_heartbeat),
                f"lost:{agent.name}:{agent.last_heartbeat or ''}",
            )
        )
    return out


def budget_needs(budget: BudgetView) -> list[Need]:
    out = []
    work = budget.work
    since = epoch(budget.updated)
    if work is not None and work.exhausted:
        out.append(
            Need(
                NeedKind.BUDGET,
                budget.domain,
                f"work budget spent ({work.used:,} of {work.limit:,} tokens, policy {work.policy})",
                since,
                f"budget:{budget.domain}:work:{work.limit}",
            )
        )
    remaining = budget.remaining_tokens
    if not budget.unlimited and remaining is not None and remaining <= 0:
        out.append(
            Need(
                NeedKind.BUDGET,
                budget.domain,
                f"communication budget spent ({budget.spent_tokens:,} tokens): grant more",
                since,
                f"budget:{budget.domain}:comm:{budget.budget_tokens}",
            )
        )
    return out


def mail_needs(messages: Sequence[Mapping]) -> list[Need]:
    """Unread messages to the operator (protocol/mailbox.py records)."""
    out = []
    for m in messages:
        if m.get("read"):
            continue
        ident = str(m.get("id") or "")
        sender = one_line(m.get("from"), 64) or "?"
        subject = one_line(m.get("subject")) or one_line(m.get("body"))
        kind = one_line(m.get("type"), 20)
        what = f"{kind}: {subject}" if kind and kind != "info" else subject
        out.append(
            Need(
                NeedKind.QUESTION,
                sender,
                one_line(what) or "(an empty message)",
                epoch(m.get("created")),
                f"question:{ident}",
                ref=ident,
            )
        )
    return out


def failed_needs(overlay: Mapping) -> list[Need]:
    """Tasks an agent failed (coordination/coordinator.py `fail`: status blocked, failed_by)
    that nobody has reopened or reassigned since."""
    tasks = overlay.get("tasks") if isinstance(overlay, Mapping) else None
    out = []
    for tid, e in (tasks if isinstance(tasks, Mapping) else {}).items():
        if not isinstance(e, Mapping) or e.get("status") != "blocked" or not e.get("failed_by"):
            continue
        out.append(
            Need(
                NeedKind.FAILED,
                one_line(e.get("failed_by"), 64),
                one_line(f"task {tid} failed: {one_line(e.get('reason')) or 'no reason given'}"),
                epoch(e.get("failed_at")),
                f"failed:{tid}:{e.get('failed_at') or ''}",
                ref=str(tid),
            )
        )
    return out


def derive(
    agents: Sequence[AgentView],
    statuses: Mapping[str, Mapping],
    budgets: Sequence[BudgetView],
    mail: Sequence[Mapping],
    overlay: Mapping,
) -> tuple[Need, ...]:
    """Every item, ranked."""
    items: list[Need] = []
    for a in agents:
        items += agent_needs(a, statuses.get(a.name) or {})
    for b in budgets:
        items += budget_needs(b)
    items += mail_needs(mail)
    items += failed_needs(overlay)
    return ranked(items)


class OperatorMail:
    """The operator's unread mail, read again only when the inbox changed (the World is
    rebuilt many times a second in a burst; the inbox rarely changes). The room's thread
    and the engine's both read it: the cache is one tuple, swapped whole."""

    def __init__(self, paths: DomainPaths) -> None:
        self.paths = paths
        self._cache: tuple[tuple, tuple[Mapping, ...]] | None = None

    def _stamp(self) -> tuple:
        try:
            names = sorted(n for n in os.listdir(self.paths.inbox) if n.endswith(".md"))
        except OSError:
            return ()
        out = []
        for n in names:
            try:
                st = os.stat(os.path.join(self.paths.inbox, n))
            except OSError:
                continue
            out.append((n, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def unread(self) -> tuple[Mapping, ...]:
        """Unread messages (records as `comm-node inbox --operator --json` prints them)."""
        from comm_node_tui.protocol.mailbox import list_inbox

        stamp = self._stamp()
        cache = self._cache
        if cache is not None and cache[0] == stamp:
            return cache[1]
        unread = tuple(list_inbox(self.paths, unread_only=True))
        self._cache = (stamp, unread)
        return unread
