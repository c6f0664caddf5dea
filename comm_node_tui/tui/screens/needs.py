"""The "Needs you" screen: what waits on the operator, ranked, and the alert history.

The items are the World's (engine/needs.py derives them; the room hands every new World
down with `show`); the screen keeps only the cursor. What a key does to an item goes back up
to the room as a `NeedAction` message: the room owns the interventions (tui/hand.py) and the
dismissed keys, so a dismissed item stays hidden when the screen is opened again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from comm_node_tui.engine.needs import Need, NeedKind
from comm_node_tui.tui.actions import NEEDS_ACTIONS, screen_bindings
from comm_node_tui.tui.alerts import AlertRecord
from comm_node_tui.tui.text import safe

KIND_STYLE = {
    NeedKind.PERMISSION: "bold yellow",
    NeedKind.DIALOG: "bold yellow",
    NeedKind.QUESTION: "bold cyan",
    NeedKind.LOST: "bold red",
    NeedKind.BUDGET: "bold red",
    NeedKind.FAILED: "red",
}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "information": ""}


def age(since: float | None, now: float) -> str:
    if since is None:
        return "-"
    s = max(0.0, now - since)
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}"
    return f"{int(s // 86400)}d"


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class NeedAction(Message):
    """A key on an item: jump, attach, approve, deny, answer or dismiss."""

    def __init__(self, action: str, need: Need) -> None:
        super().__init__()
        self.action = action
        self.need = need


class ClearAlerts(Message):
    """The operator cleared the alert history."""


class NeedsScreen(ModalScreen[None]):
    BINDINGS = screen_bindings(NEEDS_ACTIONS)
    DEFAULT_CSS = """
    NeedsScreen { align: center middle; }
    NeedsScreen > Vertical { width: 95%; height: 90%; border: thick $primary;
        background: $surface; padding: 0 1; }
    NeedsScreen #needs-table { height: 2fr; }
    NeedsScreen #alerts-table { height: 1fr; }
    NeedsScreen Label { margin-top: 1; }
    """

    def __init__(
        self,
        needs: Sequence[Need],
        alerts: Iterable[AlertRecord],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.items: tuple[Need, ...] = tuple(needs)
        self.alerts: tuple[AlertRecord, ...] = tuple(alerts)
        self._ready = False  # on_mount gave the tables their columns
        # The item the cursor fell on when the chosen one vanished (not chosen by anyone).
        self._unchosen: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(id="needs-title")
            yield DataTable(id="needs-table", cursor_type="row", zebra_stripes=True)
            yield Label(id="alerts-title")
            yield DataTable(id="alerts-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        needs = self.query_one("#needs-table", DataTable)
        for label, width in (("Kind", 10), ("Agent", 14), ("Waits for", 70), ("Age", 6)):
            needs.add_column(label, key=label, width=width)
        alerts = self.query_one("#alerts-table", DataTable)
        for label, width in (("Time", 8), ("Agent", 14), ("Kind", 22), ("Alert", 70)):
            alerts.add_column(label, key=label, width=width)
        self._ready = True
        self._fill()
        needs.focus()

    # ---- what the room hands down -----------------------------------------------------------
    def show(self, needs: Sequence[Need], alerts: Iterable[AlertRecord]) -> None:
        self.items, self.alerts = tuple(needs), tuple(alerts)
        # Only once its tables have their columns (a screen just pushed can be handed items
        # before its on_mount ran: on_mount fills it then) and while they are there (a
        # closing screen has lost them already).
        if self._ready and self.query("#needs-table") and self.query("#alerts-table"):
            self._fill()

    def _fill(self) -> None:
        now = self.clock()
        table = self.query_one("#needs-table", DataTable)
        # the key under the cursor as drawn (self.items already holds the new list)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate)[0].value
        table.clear()
        for n in self.items:
            table.add_row(
                Text(str(n.kind), style=KIND_STYLE.get(n.kind, "")),
                safe(n.agent, 32, "bold"),
                safe(n.what, 200),
                Text(age(n.since, now)),
                key=n.key,
            )
        keys = [n.key for n in self.items]
        if selected is not None and selected in keys:
            table.move_cursor(row=keys.index(selected))
        elif selected is not None and keys:
            # The item the operator was looking at is gone and the cursor fell on another
            # (another agent's prompt, say): a key pressed now must not act on what they did
            # not choose. The first press explains; moving the cursor (or a second press,
            # once they have seen it) chooses it.
            self._unchosen = keys[0]
        count = len(self.items)
        self.query_one("#needs-title", Label).update(
            Text(
                f"Needs you: {count} item{'s' * (count != 1)}"
                + ("" if count else " (nothing waits on you)"),
                style="bold",
            )
        )
        alerts = self.query_one("#alerts-table", DataTable)
        alerts.clear()
        for i, r in enumerate(reversed(self.alerts)):  # newest first
            alerts.add_row(
                Text(clock_time(r.at)),
                safe(r.agent or "", 32),
                safe(r.kind, 40),
                safe(r.text, 300, SEVERITY_STYLE.get(r.severity, "")),
                key=str(i),
            )
        self.query_one("#alerts-title", Label).update(
            Text(f"Alert history: {len(self.alerts)} (c clears)", style="bold")
        )

    @property
    def selected(self) -> Need | None:
        """The item under the cursor of the items' table."""
        tables = self.query("#needs-table")
        if not tables or not self.items:
            return None
        table = tables.first(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return next((n for n in self.items if n.key == row_key.value), None)

    # ---- keys ---------------------------------------------------------------------------
    def _on_item(self, action: str, kinds: tuple[NeedKind, ...] | None = None) -> None:
        need = self.selected
        if need is None:
            self.notify("nothing is selected", severity="warning")
            return
        # (going to, attaching and dismissing are harmless: only what acts on an agent is held)
        if need.key == self._unchosen and action in ("approve", "deny", "answer"):
            self._unchosen = None
            self.notify(
                "the item you had selected is gone; the cursor is now on another: "
                f"{need.agent}: {need.what}"[:200],
                severity="warning",
                markup=False,
            )
            return
        if kinds is not None and need.kind not in kinds:
            names = " or ".join(str(k) for k in kinds)
            self.notify(f"{action}: only for a {names} item", severity="warning", markup=False)
            return
        self.post_message(NeedAction(action, need))

    def on_key(self, event: events.Key) -> None:
        # The operator moves the cursor: what it lands on is chosen.
        if event.key in ("up", "down", "pageup", "pagedown", "home", "end"):
            self._unchosen = None

    def on_click(self, _event: events.Click) -> None:
        self._unchosen = None

    def action_jump(self) -> None:
        self._on_item("jump")

    def action_attach(self) -> None:
        self._on_item("attach")

    def action_approve(self) -> None:
        self._on_item("approve", (NeedKind.PERMISSION,))

    def action_deny(self) -> None:
        self._on_item("deny", (NeedKind.PERMISSION,))

    def action_answer(self) -> None:
        self._on_item("answer")

    def action_dismiss_item(self) -> None:
        self._on_item("dismiss")

    def action_switch_tab(self) -> None:
        needs = self.query_one("#needs-table", DataTable)
        other = self.query_one("#alerts-table", DataTable)
        (other if needs.has_focus else needs).focus()

    def action_clear_alerts(self) -> None:
        self.post_message(ClearAlerts())

    def action_close(self) -> None:
        self.dismiss(None)
