"""Events and messages: a live, filterable log; a message event opens in full.

The log's rows are keyed by arrival: each event is added once, and the oldest rows are
removed past KEEP. A message's row shows its subject (the router puts it in the event).

The filter: `/` opens its box; Enter or Escape there closes the box and gives the keys back to
the table (they are the room's keys again), the filter staying on and named in the panel's
title; Escape in the table clears it."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from comm_node_tui.protocol.events import Event
from comm_node_tui.tui.messages import EventChosen
from comm_node_tui.tui.text import plain, safe
from comm_node_tui.tui.widgets.keyed_table import KeyedTable

TITLE = "5 Events"
LEVEL_STYLE = {"error": "bold red", "warn": "yellow", "info": "", "debug": "dim"}
KEEP = 5000


class EventTable(KeyedTable):
    COLUMNS = (("Time", 8), ("Type", 18), ("Agent", 10), ("What", 120))
    # When and what kind first (a reader scans the types), then the text, which takes the
    # width left; the agent goes first (most lines start with its name).
    IMPORTANCE = ("Time", "Type", "What", "Agent")
    FLEX = ("What", 16)


def what(ev: Event) -> str:
    """The event's line, a message's subject first (what a reader scans for)."""
    subject = ev.data.get("subject") if isinstance(ev.data, dict) else None
    if ev.type.startswith("message.") and isinstance(subject, str) and subject.strip():
        return f"“{subject.strip()}” {ev.msg}"
    return ev.msg


class EventsPanel(Vertical):
    DEFAULT_CSS = """
    EventsPanel { height: 1fr; }
    EventsPanel > Input { display: none; height: 3; }
    EventsPanel > Input.filtering { display: block; }
    EventsPanel > DataTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = TITLE
        self.events: deque[Event] = deque(maxlen=KEEP)
        self.filter = ""
        self._n = 0

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: text, type or agent (Esc closes)", id="event-filter")
        yield EventTable(cursor_type="row", id="event-table")

    @property
    def table(self) -> EventTable:
        return self.query_one("#event-table", EventTable)

    def _shown(self) -> EventTable | None:
        """The table, or None while it is not there: the engine's thread posts events from
        the room's first moments to its last, and Textual mounts a panel before its children
        and removes them before it (an event in between failed a run with NoMatches). The
        events are kept either way; on_mount shows what came before the table."""
        found = self.query("#event-table")
        return found.first(EventTable) if found else None

    def on_mount(self) -> None:
        if self.events:
            self.refilter()

    def matches(self, ev: Event) -> bool:
        if not self.filter:
            return True
        f = self.filter.lower()
        return f in ev.type.lower() or f in (ev.agent or "").lower() or f in what(ev).lower()

    def _row(self, ev: Event) -> None:
        self._n += 1
        style = LEVEL_STYLE.get(ev.level, "")
        self.table.put(
            str(self._n),
            (
                Text(ev.ts[11:19]),
                Text(ev.type, style=style),
                safe(ev.agent or "", 20),
                safe(what(ev), 300, style),
            ),
        )
        if self.table.row_count > KEEP:
            self.table.drop(next(iter(self.table.rows)).value)

    def add(self, ev: Event) -> None:
        self.events.append(ev)
        table = self._shown()
        if table is not None and self.matches(ev):
            at_end = table.cursor_row >= table.row_count - 1
            self._row(ev)
            if at_end:
                table.move_cursor(row=table.row_count - 1)

    def add_many(self, events: list[Event]) -> None:
        for ev in events:
            self.events.append(ev)
        self.refilter()

    def refilter(self) -> None:
        if self._shown() is None:
            return  # on_mount draws them
        self.table.clear()
        for ev in self.events:
            if self.matches(ev):
                self._row(ev)
        if self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1)

    def open_filter(self) -> None:
        box = self.query_one(Input)
        box.add_class("filtering")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = event.value.strip()
        self.border_title = f"{TITLE} · filter: {plain(self.filter, 30)}" if self.filter else TITLE
        self.refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close_filter()

    def close_filter(self) -> None:
        """The box goes, the filter stays; the keys go back to the table."""
        self.query_one(Input).remove_class("filtering")
        self.table.focus()

    def clear_filter(self) -> None:
        self.query_one(Input).value = ""  # Input.Changed refilters and resets the title

    def on_key(self, event) -> None:
        if event.key != "escape":
            return
        if self.query_one(Input).has_focus:
            self.close_filter()
            event.stop()
        elif self.filter:
            self.clear_filter()
            event.stop()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        chosen = self.selected
        if chosen is not None:
            self.post_message(EventChosen(chosen))

    @property
    def selected(self) -> Event | None:
        row = self.table.cursor_row
        shown = [ev for ev in self.events if self.matches(ev)]
        if not shown or row < 0:
            return None
        offset = len(shown) - self.table.row_count
        idx = row + max(offset, 0)
        return shown[idx] if idx < len(shown) else None
