"""Token burn: per agent a sparkline of tokens per minute over the last 30 minutes, totals,
budget left and the projected time until the work budget runs out."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

from comm_node_tui.engine.world import UsageView, World
from comm_node_tui.tui.widgets.keyed_table import diff_keys

MINUTES = 30


class BurnRow(Horizontal):
    DEFAULT_CSS = """
    BurnRow { height: 1; }
    BurnRow > .burn-name { width: 14; }
    BurnRow > Sparkline { width: 1fr; }
    BurnRow > .burn-numbers { width: 34; }
    """

    def __init__(self, name: str) -> None:
        # No DOM id: rows are found through BurnPanel.rows, and a row removed (its domain left
        # comm-node.toml) may still be in the DOM when the domain comes back.
        super().__init__()
        self.agent = name
        self.numbers = ""
        self.series: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(self.agent[:13], style="bold"), classes="burn-name")
        yield Sparkline([0] * MINUTES, summary_function=max)
        yield Static(classes="burn-numbers")


class BurnPanel(VerticalScroll):
    """One BurnRow per agent, keyed by name: added, updated and removed with the world."""

    DEFAULT_CSS = "BurnPanel { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "4 Token burn"
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
            d = world.usage_of(a.name)
            b = budgets.get(a.name)
            left = b.remaining_tokens if b else None
            eta = d.minutes_left if d else None
            text = f"{d.total if d else 0:>9,} tok ${d.cost_usd if d else 0:.2f}"
            if a.context is not None:
                # how full its context window is (issue 17, item 6): before the message
                # budget, which a narrow row loses first
                text += f" · ctx {a.context.pct:.0f}%"
            text += f" · {'∞' if left is None else f'{left:,}'} msg"
            if eta is not None:
                text += f" · {eta:.0f}m left"
            if row.numbers != text:
                row.numbers = text
                row.query_one(".burn-numbers", Static).update(Text(text))
        if deferred:
            self.call_after_refresh(self._redraw)
