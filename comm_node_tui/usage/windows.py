"""The context window of each model, in tokens: what an agent's last request is held against
(issue 17, item 6: quality falls apart past about 40 % of it).

The Claude models have a 200,000-token window by default; a model id that ends in `[1m]`
(Claude Code's name for the 1-million-token beta) has 1,000,000. `[agents] context_window`
overrides the table for every model (0 = use it). The transcripts name the model of each
response without that suffix, so a domain running a `[1m]` model should set the override.
"""

from __future__ import annotations

DEFAULT_WINDOW = 200_000
LONG_WINDOW = 1_000_000


def context_window(model: str | None, override: int = 0) -> int:
    """The window for `model` in tokens; `override` (> 0) wins."""
    if override > 0:
        return override
    if isinstance(model, str) and model.strip().lower().endswith("[1m]"):
        return LONG_WINDOW
    return DEFAULT_WINDOW


def context_pct(tokens: int, window: int) -> float:
    """The share of the window used, in percent, one decimal."""
    return round(100.0 * tokens / window, 1) if window > 0 else 0.0
