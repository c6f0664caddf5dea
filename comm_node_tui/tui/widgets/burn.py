"""Token burn: per agent a sparkline of tokens per minute over the last 30 minutes, totals,
budget left and the projected time until the work budget runs out.

The numbers of a row are parts by importance: the time left first (the question the panel
answers: how long until this agent stops), then tokens, cost and the message budget left;
a narrow row drops parts from the end and the sparkline shrinks, the time left always
shows."""

from __future__ import annotations

import time
from collections import deque
from typing import cast

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.geometry import Size
from textual.renderables.sparkline import Sparkline as SparklineRenderable
from textual.scroll_view import ScrollView
from textual.strip import Strip

from comm_node_tui.engine.world import BudgetView, ContextUsage, DomainUsage, UsageView, World
from comm_node_tui.tui.numbers import count, minutes, money
from comm_node_tui.tui.widgets.keyed_table import diff_keys

MINUTES = 30
NAME_WIDTH = 12
MIN_SPARK = 6
SEP = " · "


def time_left(d: DomainUsage | None) -> str:
    """How long until the work budget runs out at the recent pace."""
    if d is None or not d.work_budget_tokens:
        return "no limit"
    if d.minutes_left is None:
        return "not burning"
    return f"{minutes(d.minutes_left)} left"


def numbers(
    d: DomainUsage | None, budget: BudgetView | None, context: ContextUsage | None = None
) -> tuple[str, ...]:
    """A row's numbers, most important first; how full the agent's context window is right
    after the time left (issue 17, item 6), once its current session has a response."""
    left = budget.remaining_tokens if budget else None
    ctx = () if context is None else (f"ctx {context.pct:.0f}%",)
    return (
        time_left(d),
        *ctx,
        f"{count(d.total if d else 0)} tok",
        money(d.cost_usd if d else 0),
        f"msg budget {count(left)}",
    )


def fit_parts(parts: tuple[str, ...], width: int) -> str:
    """As many parts as fit in `width`, in order; the first always (cut if it must be)."""
    out = parts[0] if parts else ""
    for part in parts[1:]:
        if len(out) + len(SEP) + len(part) > width:
            break
        out += SEP + part
    return out[:width] if width > 0 else out


class BurnRow:
    """What one agent's line shows: kept per agent, drawn by BurnPanel.render_line."""

    __slots__ = ("agent", "numbers", "parts", "series", "strip", "strip_key")

    def __init__(self, name: str) -> None:
        self.agent = name
        self.parts: tuple[str, ...] = ()
        self.numbers = ""  # the parts that fit the panel's width
        self.series: list[float] = [0.0] * MINUTES
        self.strip: Strip | None = None  # the line last drawn, and what it was drawn from
        self.strip_key: tuple | None = None


class BurnPanel(ScrollView, can_focus=True):
    """One line per agent, keyed by name: added, updated and removed with the world.

    One widget that draws its lines (the line API), not a row of three widgets per agent:
    at 200 agents those were ~800 widgets that every layout pass of the room walked, and
    only the lines on screen are drawn now."""

    COMPONENT_CLASSES = {"burn--spark-max", "burn--spark-min"}
    # the colours of Textual's Sparkline, which the rows were
    DEFAULT_CSS = """
    BurnPanel { height: 1fr; overflow-x: hidden; overflow-y: auto; }
    BurnPanel > .burn--spark-max { color: $primary; }
    BurnPanel > .burn--spark-min { color: $primary 30%; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "4 Token burn"
        self.border_subtitle = "left: work budget"
        self.samples: dict[str, deque] = {}
        self.rows: dict[str, BurnRow] = {}
        self.order: list[str] = []  # the rows top to bottom (the world's agents' order)
        self._width = 0  # the width the rows' numbers were fitted to

    def record(self, usage: UsageView | None, now: float | None = None) -> None:
        """Remember totals over time (the sparklines are drawn from them)."""
        now = time.time() if now is None else now
        for name, d in (usage.domains if usage else {}).items():
            q = self.samples.setdefault(name, deque(maxlen=4 * MINUTES * 60))
            if not q or q[-1][1] != d.total or now - q[-1][0] > 30:
                q.append((now, d.total))

    def series(self, name: str, now: float) -> list[float]:
        """Tokens spent in each of the last 30 minutes."""
        q = self.samples.get(name) or deque()
        buckets = [0.0] * MINUTES
        prev = None
        for t, total in q:
            if prev is not None and total > prev[1]:
                age = int((now - t) // 60)
                if 0 <= age < MINUTES:
                    buckets[MINUTES - 1 - age] += total - prev[1]
            prev = (t, total)
        return buckets

    def show(self, world: World, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.record(world.usage, now)
        names = [a.name for a in world.agents]
        diff = diff_keys(self.rows, names)
        for name in diff.removed:  # a domain removed from comm-node.toml
            del self.rows[name]
            self.samples.pop(name, None)
        for name in diff.added:
            self.rows[name] = BurnRow(name)
        changed = names != self.order
        self.order = names
        budgets = {b.domain: b for b in world.budgets}
        width = self._content_width()
        for a in world.agents:
            row = self.rows[a.name]
            series = self.series(a.name, now)
            parts = numbers(world.usage_of(a.name), budgets.get(a.name), a.context)
            if row.series != series or row.parts != parts:
                row.series, row.parts = series, parts
                row.numbers = self._fit(parts, width)
                changed = True
        if changed:
            self.virtual_size = Size(width, len(self.order))
            self.refresh()

    def _content_width(self) -> int:
        return self.scrollable_content_region.width

    @staticmethod
    def _fit(parts: tuple[str, ...], width: int) -> str:
        if not parts:
            return ""
        # the width less the name, the smallest sparkline and the numbers' padding (the
        # sparkline gives way to the time left when even that does not fit)
        room = max(width - NAME_WIDTH - MIN_SPARK - 1, len(parts[0]))
        return fit_parts(parts, room if width else 200)

    def on_resize(self) -> None:
        width = self._content_width()
        if width != self._width:
            self._width = width
            for row in self.rows.values():
                row.numbers = self._fit(row.parts, width)
            self.virtual_size = Size(width, len(self.order))
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self._content_width()
        index = self.scroll_offset.y + y
        base = self.rich_style
        if not 0 <= index < len(self.order):
            return Strip.blank(width, base)
        row = self.rows[self.order[index]]
        _, background = self.background_colors
        low = background + self.get_component_styles("burn--spark-min").color
        high = background + self.get_component_styles("burn--spark-max").color
        key = (width, row.numbers, row.series, base, low, high)
        if row.strip is None or row.strip_key != key:
            row.strip, row.strip_key = self._draw(row, width, base, low, high), key
        return row.strip

    def _draw(self, row: BurnRow, width: int, base: Style, low: Color, high: Color) -> Strip:
        """Name, sparkline, numbers: the cells the three widgets of a row used to draw."""
        name = row.agent[: NAME_WIDTH - 1]
        numbers = row.numbers
        spark = max(width - NAME_WIDTH - (len(numbers) + 1 if numbers else 0), 0)
        segments = [
            Segment(name, base + Style(bold=True)),
            Segment(" " * (NAME_WIDTH - len(name)), base),
        ]
        if spark:
            drawn = SparklineRenderable(
                row.series,
                width=spark,
                height=1,
                min_color=low.rich_color,
                max_color=high.rich_color,
                summary_function=max,
            ).__rich_console__(self.app.console, self.app.console.options)
            segments += Segment.apply_style(cast("list[Segment]", drawn), base)
        if numbers:  # the padding in the background's style only, as the widget drew it
            segments += [Segment(" ", Style(bgcolor=base.bgcolor)), Segment(numbers, base)]
        return Strip(segments).crop_extend(0, width, base)
