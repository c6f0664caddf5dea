"""Token burn: per agent a sparkline of tokens per minute over the last 30 minutes, totals,
budget left and the projected time until the work budget runs out."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

MINUTES = 30


class BurnRow(Horizontal):
    DEFAULT_CSS = """
    BurnRow { height: 1; }
    BurnRow > .burn-name { width: 14; }
    BurnRow > Sparkline { width: 1fr; }
    BurnRow > .burn-numbers { width: 34; }
    """

    def __init__(self, name: str) -> None:
        super().__init__(id=f"burn-{name}")
        self.agent = name
        self.numbers = ""
        self.series: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(self.agent[:13], style="bold"), classes="burn-name")
        yield Sparkline([0] * MINUTES, summary_function=max)
        yield Static(classes="burn-numbers")


class BurnPanel(VerticalScroll):
    DEFAULT_CSS = "BurnPanel { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "4 Token burn"
        self.samples: dict[str, deque] = {}
        self.rows: dict[str, BurnRow] = {}

    def record(self, usage: dict | None, now: float | None = None) -> dict[str, float]:
        """Remember totals over time; tokens per minute per agent (latest)."""
        now = time.time() if now is None else now
        rates: dict[str, float] = {}
        for name, d in (usage or {}).get("domains", {}).items():
            q = self.samples.setdefault(name, deque(maxlen=4 * MINUTES * 60))
            if not q or q[-1][1] != d["total"] or now - q[-1][0] > 30:
                q.append((now, d["total"]))
            rates[name] = d.get("tokens_per_min", 0.0)
        return rates

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

    def show(self, world: dict, now: float | None = None) -> None:
        now = time.time() if now is None else now
        usage = (world.get("usage") or {}).get("domains", {})
        budgets = {b["domain"]: b for b in world.get("budgets", [])}
        present = {a["name"] for a in world.get("agents", [])}
        for name in [n for n in self.rows if n not in present and "agents" in world]:
            self.rows.pop(name).remove()  # a domain removed from comm-node.toml
            self.samples.pop(name, None)
        missing = [a["name"] for a in world.get("agents", []) if a["name"] not in self.rows]
        if missing:
            # New rows compose on the next refresh: fill them then, not on the next update.
            new = [BurnRow(name) for name in missing]
            self.rows.update((r.agent, r) for r in new)
            self.mount_all(new)
            self.call_after_refresh(self.show, world, now)
            return
        deferred = False
        for a in world.get("agents", []):
            name = a["name"]
            row = self.rows[name]  # kept, not queried: a DOM query per agent per refresh
            if not row.children:
                # Mounted by an earlier update but not composed yet (an update can arrive
                # before that refresh): filled in after it.
                deferred = True
                continue
            series = self.series(name, now)
            if row.series != series:
                row.series = series
                row.query_one(Sparkline).data = series
            d = usage.get(name, {})
            b = budgets.get(name, {})
            left = b.get("remaining_tokens")
            eta = d.get("minutes_left")
            text = f"{d.get('total', 0):>9,} tok ${d.get('cost_usd', 0):.2f}"
            text += f" · {'∞' if left is None else f'{left:,}'} msg"
            if eta is not None:
                text += f" · {eta:.0f}m left"
            if row.numbers != text:
                row.numbers = text
                row.query_one(".burn-numbers", Static).update(Text(text))
        if deferred:
            self.call_after_refresh(self.show, world, now)
