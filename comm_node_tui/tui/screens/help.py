"""Help, generated from the same action table as the keys."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from comm_node_tui.tui.actions import ACTIONS, NEEDS_ACTIONS, PANEL_KEYS, REVIEW_ACTIONS


def shown_keys(keys: str) -> str:
    """Keys as they are typed (`?`), not Textual's names for them (`question_mark`)."""
    names = {"question_mark": "?", "slash": "/", "plus": "+"}
    return ",".join(names.get(k, k) for k in keys.split(","))


def help_table(keymap: dict[str, str] | None = None) -> Table:
    keymap = keymap or {}
    t = Table(title="comm-node control room", expand=True, show_edge=False)
    t.add_column("Key", style="bold", no_wrap=True)
    t.add_column("Action", no_wrap=True)
    t.add_column("What it does")
    for a in ACTIONS:
        t.add_row(Text(shown_keys(keymap.get(a.id, a.keys))), Text(a.description), Text(a.help))
    t.add_row(Text("1-6"), Text("Panels"), Text(", ".join(PANEL_KEYS)))
    t.add_row(Text("tab"), Text("Next panel"), Text("Cycle the panels"))
    t.add_row(Text("ctrl+p"), Text("Palette"), Text("Every action by name"))
    t.add_section()
    for a in NEEDS_ACTIONS:  # the "Needs you" screen (w)
        keys = shown_keys(keymap.get(a.id, a.keys))
        t.add_row(Text(keys), Text(f"Needs you: {a.description}"), Text(a.help))
    t.add_section()
    for a in REVIEW_ACTIONS:  # the review screen (d)
        keys = shown_keys(keymap.get(a.id, a.keys))
        t.add_row(Text(keys), Text(f"Review: {a.description}"), Text(a.help))
    return t


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding(
            "escape,q,question_mark,f1",
            "dismiss",
            "Close",
            id="help-close",
            tooltip="Close the help",
        )
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; height: 80%; border: thick $primary;
        background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_table(getattr(self.app, "keymap_ids", {})))
