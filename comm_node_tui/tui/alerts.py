"""What the room does about an event: the alert rules, apart from the widgets they touch.

An alert (protocol/event_types.py ALERTS names them, with how loud) and an agent coming to
wait on a dialog raise a notice and mark the agent's row; a refused lock flags the lock it
hit; the kickoff meeting's progress goes to the header. Pure functions of the events: the
room applies the Reaction. What the notices said is kept (AlertHistory, the last
HISTORY_SIZE): a notice goes away, the history stays until the operator clears it, and the
rows' `!` marks go with it. Ringing the terminal (bell, desktop notification escapes) when
something new waits on the operator is `Ring`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from comm_node_tui.engine.needs import Need
from comm_node_tui.protocol.event_types import ALERTS as EVENT_ALERTS
from comm_node_tui.protocol.events import Event

ALERTS: dict[str, str] = {str(k): v for k, v in EVENT_ALERTS.items()}
WAITING_EVENTS = ("agent.state", "agent.screen")


@dataclass(frozen=True, slots=True)
class Notice:
    text: str
    title: str
    severity: str  # "information", "warning" or "error" (Textual's notify)


@dataclass(frozen=True, slots=True)
class LockConflict:
    holder: str
    pattern: str
    refused: str  # who asked and was refused

    @property
    def key(self) -> str:
        return f"{self.holder}:{self.pattern}"


@dataclass(frozen=True, slots=True)
class Reaction:
    notice: Notice | None = None
    mark: str | None = None  # the agent whose row is marked until it is selected
    conflict: LockConflict | None = None


def react(ev: Event) -> Reaction:
    data = ev.data if isinstance(ev.data, dict) else {}
    conflict = None
    if ev.type == "lock.refused" and data.get("holder"):
        conflict = LockConflict(
            str(data["holder"]), str(data.get("held_pattern")), str(ev.agent or "")
        )
    severity = ALERTS.get(ev.type)
    waiting = ev.type in WAITING_EVENTS and data.get("state") == "waiting"
    if not (severity or waiting):
        return Reaction(conflict=conflict)
    return Reaction(
        notice=Notice(ev.msg[:200], ev.type, severity or "warning"),
        mark=ev.agent or None,
        conflict=conflict,
    )


class KickoffProgress:
    """The agents registered while a kickoff meeting runs (None when none runs)."""

    def __init__(self) -> None:
        self.registered: set[str] | None = None

    def feed(self, ev: Event) -> Notice | None:
        if ev.type == "kickoff.started":
            self.registered = set()
        elif ev.type == "agent.registered" and self.registered is not None and ev.agent:
            self.registered.add(ev.agent)
        elif ev.type == "kickoff.done":
            self.registered = None
            return Notice(ev.msg, "kickoff", "warning" if ev.level == "warn" else "information")
        return None

    def header(self, domains: int) -> str:
        if self.registered is None:
            return ""
        return f" · kickoff: registered {len(self.registered)}/{domains}"


HISTORY_SIZE = 200


@dataclass(frozen=True, slots=True)
class AlertRecord:
    at: float  # epoch seconds
    agent: str | None
    kind: str  # the event type (or "kickoff")
    text: str  # as the notice said it: plain text, never markup
    severity: str


class AlertHistory:
    """The notices of the room, newest last, bounded; clearing it clears the marks."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self._records: deque[AlertRecord] = deque(maxlen=size)

    def add(self, at: float, notice: Notice, agent: str | None) -> AlertRecord:
        record = AlertRecord(at, agent, notice.title, notice.text, notice.severity)
        self._records.append(record)
        return record

    def clear(self) -> None:
        self._records.clear()

    def agents(self) -> set[str]:
        """The agents some kept alert names (the rows to mark)."""
        return {r.agent for r in self._records if r.agent}

    def __iter__(self) -> Iterator[AlertRecord]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


# Anything but printable text is dropped from what goes into an escape sequence: an agent's
# text must not end the sequence early (BEL, ESC \\) and start one of its own.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f;]")
RING_CHARS = 160


def osc_text(value: str, limit: int = RING_CHARS) -> str:
    """Text fit for an OSC payload: no control characters, no `;` (OSC 777 splits on it)."""
    s = _UNSAFE.sub(" ", value)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def ring_sequence(title: str, body: str) -> str:
    """A desktop notification as terminals take it: OSC 9 (iTerm2, WezTerm, Windows
    Terminal, kitty) and OSC 777 (urxvt, foot, Ghostty, VTE); a terminal ignores the one it
    does not know. Both end with BEL."""
    t, b = osc_text(title), osc_text(body)
    return f"\x1b]9;{t}: {b}\x07\x1b]777;notify;{t};{b}\x07"


class Ring:
    """Which items of a new list are new: the room rings once for them. The first list
    seen is taken as known (what waited when the room opened is on the screen already)."""

    def __init__(self) -> None:
        self._known: set[str] | None = None

    def new(self, needs: Iterable[Need]) -> list[Need]:
        items = list(needs)
        known, self._known = self._known, {n.key for n in items}
        if known is None:
            return []
        return [n for n in items if n.key not in known]
