"""USD per million tokens, by model id prefix (longest prefix wins); config `[prices]` adds or
overrides. Cache writes cost 1.25x input (5-minute) or 2x (1-hour), cache reads 0.1x input,
per Anthropic's published pricing (late 2026). Unknown models are reported, not guessed."""

from __future__ import annotations

BUNDLED: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
}


class PriceTable:
    def __init__(self, overrides: dict | None = None) -> None:
        self.table: dict[str, dict] = {
            k: {"input": i, "output": o} for k, (i, o) in BUNDLED.items()
        }
        for key, p in (overrides or {}).items():
            if isinstance(p, dict) and "input" in p and "output" in p:
                self.table[key] = {k: v for k, v in p.items() if v is not None}

    def find(self, model: str) -> dict | None:
        best = None
        for key in self.table:
            if model.startswith(key) and (best is None or len(key) > len(best)):
                best = key
        return self.table[best] if best else None

    def cost(self, model: str, inp: int, out: int, cw5: int, cw1h: int, cr: int) -> float | None:
        p = self.find(model)
        if p is None:
            return None
        i = float(p["input"])
        cw = float(p.get("cache_write", 1.25 * i))
        cw_1h = float(p.get("cache_write_1h", 2.0 * i))
        rd = float(p.get("cache_read", 0.1 * i))
        return (inp * i + out * float(p["output"]) + cw5 * cw + cw1h * cw_1h + cr * rd) / 1e6
