"""What the room does about an event: the alert rules, apart from the widgets they touch.

An alert (protocol/event_types.py ALERTS names them, with how loud) and an agent coming to
wait on a dialog raise a notice and mark the agent's row; a refused lock flags the lock it
hit; the kickoff meeting's progress goes to the header. Pure functions of the events: the
room applies the Reaction.
"""

from __future__ import annotations

from dataclasses import dataclass

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
