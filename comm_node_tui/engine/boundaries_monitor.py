"""The boundary check on a timer (`[boundaries] check_interval_s`): new violations are alerts,
those that went away are reported resolved, and boundaries.json holds the last result for
viewers of this engine.

read() runs the check (git, file reads) in a worker thread and returns a BoundaryRead; apply()
takes it in on the engine's loop thread: the events, the data and the file come from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event

if TYPE_CHECKING:
    from comm_node_tui.boundaries.check import ImportCache, Report

SHOWN_AT_ONCE = 20  # new violations reported one by one; the rest as a count


@dataclass(frozen=True)
class BoundaryRead:
    report: Report | None
    problem: str | None = None  # git could not answer; report is None then


class BoundaryMonitor:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.data: dict | None = None  # the last check, as plain data (None: none yet)
        self._cache: ImportCache | None = None  # parsed imports, kept between checks
        self._reading = threading.Lock()  # one check at a time shares the cache

    def interval_s(self) -> float:
        return self.ctx.ws.settings.boundaries.check_interval_s

    # ---- in a worker thread ---------------------------------------------------------------
    def read(self) -> BoundaryRead:
        """Run the check; blocking, and touches no engine state."""
        from comm_node_tui.boundaries.check import ImportCache, run_check
        from comm_node_tui.boundaries.gitfiles import GitError

        with self._reading:
            if self._cache is None:
                self._cache = ImportCache()
            try:
                return BoundaryRead(run_check(self.ctx.ws, cache=self._cache))
            except GitError as exc:
                return BoundaryRead(None, str(exc))

    # ---- on the loop thread ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Check at once, then every check_interval_s until `stop` (0 turns it off)."""
        from comm_node_tui.engine.periodic import run_every

        await run_every(
            stop, self.interval_s, self.read, self.apply, self.ctx.emit, "boundary check"
        )

    def check(self) -> dict:
        """read() and apply() in the caller's thread (for a caller that drives the engine
        itself, with no run() loop)."""
        return self.apply(self.read())

    def apply(self, seen: BoundaryRead) -> dict:
        """Log violations that are new and those that went away; the check as plain data."""
        ctx = self.ctx
        if seen.report is None:
            ctx.emit(Event("boundary.unavailable", seen.problem or "no report", level="warn"))
            return self.data or {}
        report = seen.report
        before = {tuple(v["key"]) for v in (self.data or {}).get("violations", [])}
        now = {v.key for v in report.violations}
        first = self.data is None
        new = [v for v in report.violations if v.key not in before]
        for v in new[:SHOWN_AT_ONCE]:
            ctx.emit(
                Event(
                    "boundary.violation",
                    v.describe(),
                    agent=v.domain,
                    level="warn",
                    data={**v.to_json(), "alert": True},
                )
            )
        if len(new) > SHOWN_AT_ONCE:
            ctx.emit(
                Event(
                    "boundary.violation",
                    f"and {len(new) - SHOWN_AT_ONCE} more violations",
                    level="warn",
                )
            )
        for key in before - now:
            kind, domain, file, imp, _target = key
            what = f"{imp} in {file}" if kind == "import" else f"change to {file}"
            ctx.emit(Event("boundary.resolved", f"{domain}: {what}: resolved", agent=domain))
        data = report.to_json()
        for v, out in zip(report.violations, data["violations"], strict=True):
            out["key"] = list(v.key)
        data["checked_at"] = ctx.clock.time()
        self.data = data
        with contextlib.suppress(OSError):
            ctx.coord.store.write("boundaries.json", data)  # for viewers of this engine
        if new or (before - now) or first:
            ctx.changed()
        return data
