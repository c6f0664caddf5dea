"""Typed messages from the engine side to the UI."""

from __future__ import annotations

from textual.message import Message

from comm_node_tui.protocol.events import Event


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
    """A fresh snapshot of the world, read in a worker."""

    def __init__(self, world: dict) -> None:
        super().__init__()
        self.world = world


class PaneText(Message):
    def __init__(self, domain: str, text: str) -> None:
        super().__init__()
        self.domain = domain
        self.text = text
