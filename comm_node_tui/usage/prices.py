"""USD per million tokens, by model id prefix (longest prefix wins); config `[prices]` adds or
overrides.

Source: the price table baked into Claude Code 2.1.330 itself (its "model catalog":
`pricing_tiers` and each model's `pricing` key, plus the fast-mode table), read from the
binary `@anthropic-ai/claude-code-linux-x64/claude` of that version. Claude Code prices a
response as

    input*in + output*out + cache_read*rd + (cache writes) + web searches * 0.01

where cache writes are the 1-hour part (`cache_creation.ephemeral_1h_input_tokens`, at most
`cache_creation_input_tokens`) at the 1-hour rate and the rest of `cache_creation_input_tokens`
at the 5-minute rate; a model with a `long_prompt` tier uses it when input + cache read +
cache write exceed its threshold; `speed: "fast"` uses the fast-mode table; `inference_geo:
"us"` multiplies the token part by 1.1. This module does the same, and its result matched
`total_cost_usd` of `claude -p --output-format json` to the micro-dollar (tests/test_usage*.py).
Unknown models are reported, not guessed (Claude Code would guess the default model's rate).
"""

from __future__ import annotations

import re

WEB_SEARCH_USD = 0.01
US_GEO_FACTOR = 1.1


def _tier(i: float, o: float, cw5: float, cw1h: float, rd: float) -> dict:
    return {"input": i, "output": o, "cache_write": cw5, "cache_write_1h": cw1h, "cache_read": rd}


# Claude Code 2.1.330 `pricing_tiers`, by its own names
_T = {
    "tier_2_10": _tier(2, 10, 2.5, 4, 0.2),
    "tier_2_10_cache_read_0_10": _tier(2, 10, 2.5, 4, 0.1),
    "tier_3_15": _tier(3, 15, 3.75, 6, 0.3),
    "tier_5_25": _tier(5, 25, 6.25, 10, 0.5),
    "tier_15_75": _tier(15, 75, 18.75, 30, 1.5),
    "tier_10_50": _tier(10, 50, 12.5, 20, 1),
    "tier_10_50_cache_read_0_25": _tier(10, 50, 12.5, 20, 0.25),
    "tier_4_20_cache_read_0_20": _tier(4, 20, 5, 8, 0.2),
    "tier_8_40_cache_read_0_20": _tier(8, 40, 10, 16, 0.2),
    "haiku_35": _tier(0.8, 4, 1, 1.6, 0.08),
    "haiku_45": _tier(1, 5, 1.25, 2, 0.1),
    "_3_haiku": _tier(0.25, 1.25, 0.3, 0.5, 0.03),  # published price; not in the catalog
    "haiku_55": {
        **_tier(0.1, 0.5, 0.125, 0.2, 0.01),
        "long_prompt": {"above": 100_000, **_tier(0.5, 2.5, 0.625, 1, 0.05)},
    },
}
# Claude Code's fast-mode prices (used when a response says `speed: "fast"`)
_FAST = {
    "opus_4_6": _tier(30, 150, 37.5, 60, 3),
    "opus_4_8": _tier(10, 50, 12.5, 20, 1),
    "opus_5_5": _tier(8, 40, 10, 16, 0.4),
    "fable_5_2": _tier(16, 80, 20, 32, 0.4),
}

# model id (catalog id; dated first-party ids such as claude-opus-4-20250514 match by prefix)
# -> (tier, fast tier or None)
_MODELS: dict[str, tuple[str, str | None]] = {
    "claude-3-5-haiku": ("haiku_35", None),
    "claude-haiku-4-5": ("haiku_45", None),
    "claude-haiku-5-5": ("haiku_55", None),
    "claude-3-5-sonnet": ("tier_3_15", None),
    "claude-3-7-sonnet": ("tier_3_15", None),
    "claude-sonnet-4": ("tier_3_15", None),  # catalog id claude-sonnet-4-0, sent as -20250514
    "claude-sonnet-4-5": ("tier_3_15", None),
    "claude-sonnet-4-6": ("tier_3_15", None),
    "claude-sonnet-5": ("tier_2_10", None),
    "claude-sonnet-5-5": ("tier_2_10_cache_read_0_10", None),
    "claude-opus-4": ("tier_15_75", None),  # catalog id claude-opus-4-0, sent as -20250514
    "claude-opus-4-1": ("tier_15_75", None),
    "claude-opus-4-5": ("tier_5_25", None),
    "claude-opus-4-6": ("tier_5_25", "opus_4_6"),
    "claude-opus-4-7": ("tier_5_25", "opus_4_6"),
    "claude-opus-4-8": ("tier_5_25", "opus_4_8"),
    "claude-opus-5": ("tier_5_25", "opus_4_8"),
    "claude-opus-5-5": ("tier_4_20_cache_read_0_20", "opus_5_5"),
    "claude-fable-5": ("tier_10_50", None),
    "claude-fable-5-1": ("tier_10_50_cache_read_0_25", None),
    "claude-fable-5-2": ("tier_8_40_cache_read_0_20", "fable_5_2"),
    "claude-mythos-5": ("tier_10_50", None),
    "claude-mythos-5-1": ("tier_10_50_cache_read_0_25", None),
    "claude-mythos-5-2": ("tier_8_40_cache_read_0_20", "fable_5_2"),
    # older models Claude Code 2.1.330 no longer lists (Anthropic's published prices)
    "claude-3-opus": ("tier_15_75", None),
    "claude-3-haiku": ("_3_haiku", None),
}


def _bundled() -> dict[str, dict]:
    table = {}
    for model, (tier, fast) in _MODELS.items():
        entry = dict(_T[tier])
        if fast:
            entry["fast"] = dict(_FAST[fast])
        table[model] = entry
    return table


BUNDLED: dict[str, dict] = _bundled()

# Bedrock/Vertex spellings: "us.anthropic.claude-...", "claude-...@2025...", "claude-...[1m]"
_PROVIDER_PREFIX = re.compile(r"^(?:[a-z]{2,4}\.)?anthropic\.")
_WINDOW_SUFFIX = re.compile(r"\[[12]m\]$")


def canonical(model: str) -> str:
    m = _WINDOW_SUFFIX.sub("", model.strip().lower())
    return _PROVIDER_PREFIX.sub("", m)


class PriceTable:
    def __init__(self, overrides: dict | None = None) -> None:
        self.table: dict[str, dict] = {k: dict(v) for k, v in BUNDLED.items()}
        for key, p in (overrides or {}).items():
            if isinstance(p, dict) and "input" in p and "output" in p:
                # an override replaces the whole entry: its cache rates follow its input rate
                self.table[key] = {k: v for k, v in p.items() if v is not None}
        self._memo: dict[str, dict | None] = {}

    def find(self, model: str) -> dict | None:
        if model in self._memo:
            return self._memo[model]
        name = canonical(model)
        best = None
        for key in self.table:
            if name.startswith(key) and (best is None or len(key) > len(best)):
                best = key
        found = self.table[best] if best else None
        if len(self._memo) < 1024:  # model names come from files: keep the memo bounded
            self._memo[model] = found
        return found

    def cost(
        self,
        model: str,
        inp: int,
        out: int,
        cw5: int,
        cw1h: int,
        cr: int,
        *,
        web_search: int = 0,
        fast: bool = False,
        us_geo: bool = False,
    ) -> float | None:
        p = self.find(model)
        if p is None:
            return None
        if fast and isinstance(p.get("fast"), dict):
            p = p["fast"]
        long = p.get("long_prompt")
        if isinstance(long, dict) and inp + cr + cw5 + cw1h > long.get("above", 0):
            p = long
        i = float(p["input"])
        cw = float(p.get("cache_write", 1.25 * i))
        cw_1h = float(p.get("cache_write_1h", 2.0 * i))
        rd = float(p.get("cache_read", 0.1 * i))
        tokens = (inp * i + out * float(p["output"]) + cw5 * cw + cw1h * cw_1h + cr * rd) / 1e6
        if us_geo:
            tokens *= US_GEO_FACTOR
        return tokens + web_search * WEB_SEARCH_USD
