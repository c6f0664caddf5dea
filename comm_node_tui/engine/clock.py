"""The engine's clock, injectable: every monitor asks it for the time instead of calling
`time.time()` / `time.monotonic()`, so a test can move time forward without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (compared with heartbeats and file times)."""
        ...

    def monotonic(self) -> float:
        """Seconds that only go forward (intervals: polls, nudges, debouncing)."""
        ...


class SystemClock:
    """The real clock (the default)."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, time: float = 1_800_000_000.0, monotonic: float = 10_000.0) -> None:
        self._time = time
        self._monotonic = monotonic

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Both readings move on by `seconds` (never back: a monotonic clock cannot)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._time += seconds
        self._monotonic += seconds
