"""The selected agent's live tmux screen (text only, cleaned)."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from comm_node_tui.tui.text import block


class PreviewPanel(VerticalScroll):
    DEFAULT_CSS = "PreviewPanel { height: 1fr; } PreviewPanel > Static { width: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "6 Pane"
        self.domain: str | None = None

    def compose(self):
        yield Static(id="pane-text")

    def show(self, domain: str | None, text: str) -> None:
        self.domain = domain
        self.border_title = f"6 Pane · {domain}" if domain else "6 Pane"
        self.query_one("#pane-text", Static).update(block(text, max_lines=200, width=300))
        self.scroll_end(animate=False)
