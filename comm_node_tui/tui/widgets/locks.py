"""The locks panel: pattern, holder, exclusive or shared, expiry; recent conflicts flagged."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from comm_node_tui.tui.text import safe

COLUMNS = ("Pattern", "Holder", "Kind", "Expires in", "Conflict")
WIDTHS = (24, 12, 6, 10, 12)


class LocksPanel(DataTable):
    DEFAULT_CSS = "LocksPanel { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.border_title = "3 Locks"
        self.conflicts: dict[str, str] = {}  # "holder:pattern" -> who was refused
        self.locks: list[dict] = []
        for c, w in zip(COLUMNS, WIDTHS, strict=True):
            self.add_column(c, key=c, width=w)

    def show(self, world: dict, now: float) -> None:
        locks = world.get("locks", [])
        if locks == self.locks:
            return
        self.locks = locks
        self.clear()
        for lk in locks:
            try:
                left = (
                    datetime.fromisoformat(lk["expires_at"].replace("Z", "+00:00")).timestamp()
                    - now
                )
            except (KeyError, ValueError):
                left = 0
            key = f"{lk['holder']}:{lk['pattern']}"
            self.add_row(
                safe(lk["pattern"], 60),
                safe(lk["holder"], 30),
                Text("excl" if lk["exclusive"] else "shared"),
                Text(f"{max(left, 0) / 60:.0f} min"),
                safe(self.conflicts.get(key, ""), 30, "bold yellow"),
                key=key,
            )

    @property
    def selected(self) -> dict | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return next(
            (lk for lk in self.locks if f"{lk['holder']}:{lk['pattern']}" == row_key.value), None
        )
