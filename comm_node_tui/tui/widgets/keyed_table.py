"""Rows by key: a panel is given the whole set of rows it should show, and only what differs
is touched. New keys are added, changed cells updated, keys no longer given REMOVED (a domain
taken out of comm-node.toml leaves the panels); a row that did not change is not repainted
(the room shows fifty agents and refreshes every few seconds).

`diff_keys` is the rule, shared by the table here and the panels made of widgets (burn rows)
or of a tree (tasks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.widgets import DataTable


@dataclass(frozen=True, slots=True)
class KeyDiff:
    added: tuple[str, ...]  # in the order given
    removed: tuple[str, ...]
    reordered: bool  # the kept and added keys, appended, would not be in the order given


def diff_keys(shown: Iterable[str], wanted: Sequence[str]) -> KeyDiff:
    shown = list(shown)
    wanted_set = set(wanted)
    had = set(shown)
    kept = [k for k in shown if k in wanted_set]
    added = tuple(k for k in wanted if k not in had)
    return KeyDiff(
        added=added,
        removed=tuple(k for k in shown if k not in wanted_set),
        reordered=[*kept, *added] != list(wanted),
    )


def signature(cells: Sequence[Text]) -> tuple:
    """What a row shows: the text, its style and its spans per cell."""
    return tuple((c.plain, str(c.style), tuple(c.spans)) for c in cells)


class KeyedTable(DataTable):
    """A DataTable whose rows are keyed (COLUMNS: (label, width) pairs; labels are the
    column keys)."""

    COLUMNS: ClassVar[tuple[tuple[str, int], ...]] = ()

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, tuple] = {}  # key -> signature, in the table's order
        # Columns now, not in on_mount: the first rows may arrive before it runs.
        for label, width in self.COLUMNS:
            self.add_column(label, key=label, width=width)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def sync(self, rows: Iterable[tuple[str, Sequence[Text]]]) -> tuple[str, ...]:
        """Show exactly these rows, in this order; the keys removed."""
        wanted = dict(rows)
        diff = diff_keys(self._shown, list(wanted))
        if diff.reordered:
            self._rebuild(wanted)
            return diff.removed
        for key in diff.removed:
            self.drop(key)
        for key, cells in wanted.items():
            self.put(key, cells)
        return diff.removed

    def put(self, key: str, cells: Sequence[Text]) -> None:
        """Add the row, or update the cells of it that changed."""
        new = signature(cells)
        before = self._shown.get(key)
        if before == new:
            return
        self._shown[key] = new
        if before is None or key not in self.rows:
            self.add_row(*cells, key=key)
            return
        for (label, _width), cell, old, now in zip(self.COLUMNS, cells, before, new, strict=True):
            if old != now:
                self.update_cell(key, label, cell)

    def drop(self, key: str) -> None:
        self._shown.pop(key, None)
        if key in self.rows:
            self.remove_row(key)

    def clear(self, columns: bool = False) -> KeyedTable:
        self._shown.clear()
        super().clear(columns)
        return self

    def _rebuild(self, wanted: dict[str, Sequence[Text]]) -> None:
        """Rows in a new order (rare): laid out again, the cursor kept on its row."""
        selected = self.selected_key
        self.clear()
        for key, cells in wanted.items():
            self.put(key, cells)
        if selected in wanted:
            self.move_cursor(row=list(wanted).index(selected))
