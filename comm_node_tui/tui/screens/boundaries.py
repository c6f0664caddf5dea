"""The boundaries overlay: what the engine's last check found (changes outside scopes,
imports that break a domain's rules). Text from the repository is shown as plain text."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from comm_node_tui.engine.world import BoundaryView


class BoundariesScreen(ModalScreen):
    BINDINGS = [
        Binding(
            "escape,q,v", "dismiss", "Close", id="boundaries-close", tooltip="Close the overlay"
        )
    ]
    DEFAULT_CSS = """
    BoundariesScreen { align: center middle; }
    BoundariesScreen > Vertical { width: 95%; height: 85%; border: thick $warning;
        background: $surface; padding: 0 1; }
    BoundariesScreen DataTable { height: 1fr; }
    """

    def __init__(self, report: BoundaryView | None) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._summary(), id="boundaries-summary")
            table = DataTable(id="boundaries-table", cursor_type="row", zebra_stripes=True)
            for label, width in (
                ("Domain", 12),
                ("Where", 34),
                ("What", 38),
                ("Owner", 10),
                ("Rule", 34),
            ):
                table.add_column(label, width=width)
            yield table

    def _summary(self) -> Text:
        r = self.report
        if not r:
            return Text(
                "Boundaries: not checked yet (the engine checks every 30 s; "
                "or run `comm-node check`)"
            )
        n = len(r.violations)
        ago = time.time() - (time.time() if r.checked_at is None else r.checked_at)
        unparsed = len(r.unparsed)
        text = Text(
            f"Boundaries: {n} violation(s) · {r.files_checked} files, "
            f"{r.imports_checked} imports · checked {ago:.0f} s ago"
            + (f" · {unparsed} file(s) not parsed" if unparsed else "")
        )
        if n:
            text.stylize("bold red", 0, 11)
        return text

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for v in self.report.violations if self.report else ():
            what = f"{v.import_text} → {v.target}" if v.kind == "import" else "changed"
            table.add_row(
                Text(v.domain), Text(v.where), Text(what), Text(v.owner or "-"), Text(v.rule)
            )
        table.focus()
