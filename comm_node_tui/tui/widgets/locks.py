"""The locks panel: pattern, holder, exclusive or shared, expiry; recent conflicts flagged."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from comm_node_tui.engine.world import LockView, World
from comm_node_tui.tui.alerts import LockConflict
from comm_node_tui.tui.numbers import minutes
from comm_node_tui.tui.text import safe
from comm_node_tui.tui.widgets.keyed_table import KeyedTable

LABELS = ("Pattern", "Holder", "Kind", "Expires in", "Conflict")
WIDTHS = (24, 12, 6, 10, 12)
IMPORTANCE = ("Pattern", "Holder", "Expires in", "Kind", "Conflict")


def minutes_left(lock: LockView, now: float) -> float:
    try:
        then = datetime.fromisoformat(lock.expires_at.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return 0.0
    return max(then - now, 0.0) / 60


class LocksPanel(KeyedTable):
    DEFAULT_CSS = "LocksPanel { height: 1fr; }"
    COLUMNS = tuple(zip(LABELS, WIDTHS, strict=True))
    IMPORTANCE = IMPORTANCE
    FLEX = ("Pattern", 14)

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.border_title = "3 Locks"
        self.conflicts: dict[str, str] = {}  # lock key ("holder:pattern") -> who was refused
        self._locks: tuple[LockView, ...] = ()
        self._now = 0.0

    def show(self, world: World, now: float) -> None:
        self._locks, self._now = world.locks, now
        self._redraw()

    def flag_conflict(self, conflict: LockConflict) -> None:
        """Someone was refused because of this lock: said on its row."""
        self.conflicts[conflict.key] = f"⚠ {conflict.refused}"
        self._redraw()

    def _redraw(self) -> None:
        self.sync(
            (
                lk.key,
                (
                    # a refusal marks the pattern too: the Conflict column is the first to go
                    # in a narrow panel
                    safe(
                        ("⚠ " if lk.key in self.conflicts else "") + lk.pattern,
                        60,
                        "bold yellow" if lk.key in self.conflicts else "",
                    ),
                    safe(lk.holder, 30),
                    Text("excl" if lk.exclusive else "shared"),
                    Text(minutes(minutes_left(lk, self._now))),
                    safe(self.conflicts.get(lk.key, ""), 30, "bold yellow"),
                ),
            )
            for lk in self._locks
        )

    @property
    def selected(self) -> LockView | None:
        key = self.selected_key
        return next((lk for lk in self._locks if lk.key == key), None)
