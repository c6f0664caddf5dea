"""One way to write numbers in every panel: 950, 12.3k, 1.2M tokens; 42 %; $0.12; 12m.

The panels wrote the same quantity two ways (200,000 in the burn panel, 100% in the agents
panel's bar, "10 min" in locks, "12m left" in burn); a reader compares across panels, so
every number goes through these few functions."""

from __future__ import annotations

import math

UNLIMITED = "∞"


def count(n: float | None) -> str:
    """A token count or rate: 950, 12.3k, 200k, 1.2M (one decimal below 100 of a unit)."""
    if n is None:
        return UNLIMITED
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            scaled = n / size
            # 12.3k but 200k: a decimal only where it says something
            text = f"{scaled:.1f}" if scaled < 100 else f"{scaled:.0f}"
            if text.endswith(".0"):
                text = text[:-2]
            if text == "1000" and unit != "G":  # 999.95k rounds up: say 1M
                return f"{sign}1{dict(k='M', M='G')[unit]}"
            return f"{sign}{text}{unit}"
    return f"{sign}{n:.0f}"


def percent(fraction: float) -> str:
    """A fraction as a whole percentage: 0.423 -> 42%."""
    return f"{math.floor(fraction * 100 + 0.5):.0f}%"


def money(usd: float | None) -> str:
    """Dollars: $0.12, $12.34, $1.2k past a thousand."""
    usd = usd or 0.0
    return f"${count(usd)}" if usd >= 1000 else f"${usd:.2f}"


def minutes(m: float | None) -> str:
    """A duration in minutes: 12m, 2h05m, 3d; '-' when unknown."""
    if m is None:
        return "-"
    m = max(m, 0.0)
    if m < 60:
        return f"{m:.0f}m"
    if m < 24 * 60:
        h, rest = divmod(round(m), 60)
        return f"{h}h{rest:02d}m"
    return f"{m / (24 * 60):.0f}d"
