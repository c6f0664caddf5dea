"""The one way tests wait for something to happen: poll a condition until it holds.

`wait_for` for plain code (threads, subprocesses, tmux, files), `until` inside a Pilot
(it yields to the app between polls, so the room keeps running). A timeout fails with what
was awaited (the condition's source, or `what=`), the last value seen and, with `show=`,
the state that explains it (a screen, a list of events).

A fixed sleep never stands in for one of these: it is either too short on a loaded machine
(a flaky test) or too long everywhere else (a slow suite). The sleeps left in tests/ are the
behaviour under test (time that must pass, a typist's pace, "nothing happens for N s"),
each with a comment saying so.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Generous: a bound only for when something is wrong, never paid by a passing test (the
# condition is checked every `every` seconds), and a loaded 2-core machine running the
# suite in parallel beside two CPU hogs can be ten times slower than an idle one.
TIMEOUT_S = 30.0


def describe(predicate: Callable[[], Any]) -> str:
    """The condition as the test wrote it: a lambda's source line, else its name."""
    name = getattr(predicate, "__name__", "")
    if name == "<lambda>":
        try:
            source = " ".join(inspect.getsource(predicate).split())
        except (OSError, TypeError):
            source = ""
        if source:
            return source if len(source) <= 300 else source[:299] + "…"
    owner = getattr(predicate, "__self__", None)
    if owner is not None and name:
        return f"{owner!r}.{name}()"
    return getattr(predicate, "__qualname__", None) or repr(predicate)


def _failure(
    predicate: Callable[[], Any],
    timeout: float,
    last: Any,
    what: str | None,
    show: Callable[[], Any] | None,
) -> AssertionError:
    seen = repr(last)
    if len(seen) > 2000:
        seen = seen[:2000] + "…"
    text = f"timed out after {timeout:g} s waiting for {what or describe(predicate)}"
    text += f"; last value: {seen}"
    if show is not None:
        try:
            shown = show()
        except Exception as exc:  # the message must not hide the timeout
            shown = f"(show() failed: {exc!r})"
        text += f"\n{shown}"
    return AssertionError(text)


def wait_for(
    predicate: Callable[[], T],
    timeout: float = TIMEOUT_S,
    every: float = 0.02,
    *,
    what: str | None = None,
    show: Callable[[], Any] | None = None,
) -> T:
    """Poll until `predicate()` is truthy and return its value; AssertionError on timeout.

    The condition is checked once more at the deadline, so a starved thread that wakes up
    late still sees a condition that came true meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(predicate, timeout, value, what, show)
        time.sleep(every)  # the polling interval, not a guess at how long something takes


async def until(
    pilot: Any,
    predicate: Callable[[], T],
    timeout: float = TIMEOUT_S,
    every: float = 0.05,
    *,
    what: str | None = None,
    show: Callable[[], Any] | None = None,
) -> T:
    """`wait_for` inside a Pilot: the app runs (messages, workers, timers) between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(predicate, timeout, value, what, show)
        await pilot.pause(every)
