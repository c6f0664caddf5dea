"""Rows by key: a panel is given the whole set of rows it should show, and only what differs
is touched. New keys are added, changed cells updated, keys no longer given REMOVED (a domain
taken out of comm-node.toml leaves the panels); a row that did not change is not repainted
(the room shows fifty agents and refreshes every few seconds).

`diff_keys` is the rule, shared by the table here and the panels made of widgets (burn rows)
or of a tree (tasks).

Columns that matter first: a table narrower than its columns drops the least important ones
(IMPORTANCE, most important first) instead of cutting the rightmost, and one FLEX column
takes the width left over (at least its minimum). The rows keep all their cells, so a table
made wider again shows the dropped columns at once.
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


def fit_columns(
    columns: Sequence[tuple[str, int]],
    width: int,
    importance: Sequence[str] = (),
    flex: tuple[str, int] | None = None,
    padding: int = 1,
) -> dict[str, int]:
    """The columns that fit in `width`, label -> width, in the table's order: taken by
    importance (the labels not named come after, in their order) while they fit; the flex
    column counts at its minimum, then gets what is left (up to its own width)."""
    nominal = dict(columns)
    order = [*importance, *(label for label, _ in columns if label not in importance)]
    flex_label, flex_min = flex if flex else ("", 0)
    chosen: dict[str, int] = {}
    used = 0
    for label in order:
        w = min(flex_min, nominal[label]) if label == flex_label else nominal[label]
        if used + w + 2 * padding <= width or not chosen:  # the first column always shows
            chosen[label] = w
            used += w + 2 * padding
    if flex_label in chosen:
        spare = max(width - used, 0)
        chosen[flex_label] = min(nominal[flex_label], chosen[flex_label] + spare)
    return {label: chosen[label] for label, _ in columns if label in chosen}


class KeyedTable(DataTable):
    """A DataTable whose rows are keyed (COLUMNS: (label, width) pairs; labels are the
    column keys)."""

    COLUMNS: ClassVar[tuple[tuple[str, int], ...]] = ()
    IMPORTANCE: ClassVar[tuple[str, ...]] = ()  # dropped last first; unnamed: COLUMNS order
    FLEX: ClassVar[tuple[str, int] | None] = None  # (label, minimum width)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, tuple] = {}  # key -> signature, in the table's order
        self._all_cells: dict[str, tuple[Text, ...]] = {}  # every cell, shown or not
        self.shown_columns: dict[str, int] = dict(self.COLUMNS)
        # Columns now, not in on_mount: the first rows may arrive before it runs.
        for label, width in self.COLUMNS:
            self.add_column(label, key=label, width=width)

    def on_resize(self) -> None:
        self.fit(self.scrollable_content_region.width)

    def watch_show_vertical_scrollbar(self) -> None:
        # The scrollbar came or went without a resize (rows added before the first resize
        # or after it): fitted again once laid out, so the columns do not depend on that
        # order (a snapshot at 80x24 differed under load).
        self.call_after_refresh(lambda: self.fit(self.scrollable_content_region.width))

    def fit(self, width: int) -> None:
        """Show the columns that matter most in `width` cells (laid out again on change)."""
        if width <= 0:
            return
        wanted = fit_columns(self.COLUMNS, width, self.IMPORTANCE, self.FLEX, self.cell_padding)
        if wanted == self.shown_columns:
            return
        self.shown_columns = wanted
        selected = self.selected_key
        cells = dict(self._all_cells)
        super().clear(columns=True)
        self._shown.clear()
        self._all_cells.clear()
        for label, w in wanted.items():
            self.add_column(label, key=label, width=w)
        for key, row in cells.items():
            self.put(key, row)
        if selected in cells:
            self.move_cursor(row=list(cells).index(selected))

    def _visible(self, cells: Sequence[Text]) -> list[tuple[str, Text]]:
        return [
            (label, cell)
            for (label, _w), cell in zip(self.COLUMNS, cells, strict=True)
            if label in self.shown_columns
        ]

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def cell(self, key: str, label: str) -> Text:
        """What the row holds in a column, shown or not (a narrow table drops columns)."""
        labels = [lbl for lbl, _w in self.COLUMNS]
        return self._all_cells[key][labels.index(label)]

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
        if key in self._shown and self._all_cells.get(key) is cells:
            return  # the very cells shown (a panel that keeps the rows it made)
        self._all_cells[key] = tuple(cells)
        visible = self._visible(cells)
        new = signature([cell for _label, cell in visible])
        before = self._shown.get(key)
        if before == new:
            return
        self._shown[key] = new
        if before is None or key not in self.rows:
            self.add_row(*(cell for _label, cell in visible), key=key)
            return
        for (label, cell), old, now in zip(visible, before, new, strict=True):
            if old != now:
                self.update_cell(key, label, cell)

    def drop(self, key: str) -> None:
        self._shown.pop(key, None)
        self._all_cells.pop(key, None)
        if key in self.rows:
            self.remove_row(key)

    def clear(self, columns: bool = False) -> KeyedTable:
        self._shown.clear()
        self._all_cells.clear()
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
