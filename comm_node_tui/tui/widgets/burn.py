"""Token burn: per agent a sparkline of tokens per minute over the last 30 minutes, totals,
budget left and the projected time until the work budget runs out.

The numbers of a row are parts by importance: the time left first (the question the panel
answers: how long until this agent stops), then tokens, cost and the message budget left;
a narrow row drops parts from the end and the sparkline shrinks, the time left always
shows."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

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


class BurnRow(Horizontal):
    DEFAULT_CSS = f"""
    BurnRow {{ height: 1; }}
    BurnRow > .burn-name {{ width: {NAME_WIDTH}; }}
    BurnRow > Sparkline {{ width: 1fr; }}
    BurnRow > .burn-numbers {{ width: auto; padding-left: 1; }}
    """

    def __init__(self, name: str) -> None:
        # No DOM id: rows are found through BurnPanel.rows, and a row removed (its domain left
        # comm-node.toml) may still be in the DOM when the domain comes back.
        super().__init__()
        self.agent = name
        self.parts: tuple[str, ...] = ()
        self.numbers = ""
        self.series: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(self.agent[: NAME_WIDTH - 1], style="bold"), classes="burn-name")
        yield Sparkline([0] * MINUTES, summary_function=max)
        yield Static(classes="burn-numbers")

    def set_parts(self, parts: tuple[str, ...]) -> None:
        self.parts = parts
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        if not self.children or not self.parts:
            return
        # the row's width less the name, the smallest sparkline and the numbers' padding
        # (the sparkline gives way to the time left when even that does not fit)
        room = max(self.size.width - NAME_WIDTH - MIN_SPARK - 1, len(self.parts[0]))
        text = fit_parts(self.parts, room if self.size.width else 200)
        if text != self.numbers:
            self.numbers = text
            self.query_one(".burn-numbers", Static).update(Text(text))


class BurnPanel(VerticalScroll):
    """One BurnRow per agent, keyed by name: added, updated and removed with the world."""

    DEFAULT_CSS = "BurnPanel { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "4 Token burn"
        self.border_subtitle = "left: work budget"
        self.samples: dict[str, deque] = {}
        self.rows: dict[str, BurnRow] = {}
        self._world: World | None = None
        self._now = 0.0

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
        self._world, self._now = world, time.time() if now is None else now
        self.record(world.usage, self._now)
        self._redraw()

    def _redraw(self) -> None:
        world, now = self._world, self._now
        if world is None or not self.is_attached:
            return
        diff = diff_keys(self.rows, [a.name for a in world.agents])
        for name in diff.removed:
            self.rows.pop(name).remove()  # a domain removed from comm-node.toml
            self.samples.pop(name, None)
        if diff.added:
            # New rows compose on the next refresh: fill them then, not on the next update.
            new = [BurnRow(name) for name in diff.added]
            self.rows.update((r.agent, r) for r in new)
            self.mount_all(new)
            self.call_after_refresh(self._redraw)
            return
        budgets = {b.domain: b for b in world.budgets}
        deferred = False
        for a in world.agents:
            row = self.rows[a.name]  # kept, not queried: a DOM query per agent per refresh
            if not row.children:
                # Mounted by an earlier update but not composed yet (an update can arrive
                # before that refresh): filled in after it.
                deferred = True
                continue
            series = self.series(a.name, now)
            if row.series != series:
                row.series = series
                row.query_one(Sparkline).data = series
            parts = numbers(world.usage_of(a.name), budgets.get(a.name), a.context)
            if row.parts != parts:
                row.set_parts(parts)
        if deferred:
            self.call_after_refresh(self._redraw)
