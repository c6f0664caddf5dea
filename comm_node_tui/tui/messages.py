"""Typed messages: from the engine side to the room, and from the panels up to the room.

Data goes down as method calls with typed values (a panel's `show(world)`); what a panel has
to say goes up as one of these, and the room routes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.message import Message

from comm_node_tui.engine.world import Need, World
from comm_node_tui.protocol.events import Event


# ---- the engine side -----------------------------------------------------------------------
class EngineEvent(Message):
    """One event from the engine (or the log, in viewer mode)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class WorldChanged(Message):
    """Something changed: the world should be re-read. Bursts collapse into one."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WorldChanged)


class WorldUpdated(Message):
    """A fresh snapshot of the world, read in a worker, with what the room reads beside it."""

    def __init__(
        self,
        world: World,
        git: Mapping[str, str],
        paused: bool,
        seq: int = 0,
        *,
        no_tasks: bool = False,
    ) -> None:
        super().__init__()
        self.seq = seq  # the order the read started in (app.py drops an older one)
        self.no_tasks = no_tasks  # a first look before the tasks are loaded (not "no tasks")
        self.world = world
        self.git = git  # per domain: branch, dirty mark, ahead/behind
        self.paused = paused


class NeedsArrived(Message):
    """Items not in the previous World wait on the operator: the room rings (a bell and a
    desktop notification escape, `sequence`, written to the terminal as it is)."""

    def __init__(self, needs: tuple[Need, ...], sequence: str) -> None:
        super().__init__()
        self.needs = needs
        self.sequence = sequence


class PaneText(Message):
    def __init__(self, domain: str, text: str) -> None:
        super().__init__()
        self.domain = domain
        self.text = text


# ---- the panels ----------------------------------------------------------------------------
class AgentHighlighted(Message):
    """The cursor of the agents panel is on this agent (the preview follows it)."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent


class AgentChosen(Message):
    """Enter on an agent: go to its pane."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent


class EventChosen(Message):
    """Enter on an event: read it (its message) in full."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
