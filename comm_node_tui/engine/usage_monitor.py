"""Real token use, from Claude Code's transcripts, and the work budgets it is held against:
usage.json for viewers, the budget file's "work" part for the hooks (in guarded/), an alert
(and a pause under policy "pause") when a domain has spent its work budget."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.messages import now_iso

if TYPE_CHECKING:
    from comm_node_tui.adapters.agent_cli import UsageSource


class UsageMonitor:
    def __init__(
        self, ctx: EngineContext, *, pause: Callable[[str], None], poll_s: float = 5.0
    ) -> None:
        self.ctx = ctx
        self._pause = pause  # interrupts an agent (off the loop thread)
        self.poll_s = poll_s
        self.summary: dict | None = None  # the last poll's totals, as plain data
        self._tracker: UsageSource | None = None  # made on first use
        self._polled_at: float | None = None  # the clock's monotonic time of the last poll
        self._exhausted: set[str] = set()
        self._context_high: set[str] = set()  # over context_alert_pct: alerted once a crossing

    def tick(self, force: bool = False) -> dict | None:
        """Poll the transcripts when poll_s has passed (or `force`); the summary, or None
        when it was not time yet."""
        from comm_node_tui.adapters.agent_cli import agent_cli_for

        ctx = self.ctx
        now = ctx.clock.monotonic()
        if not force and self._polled_at is not None and now - self._polled_at < self.poll_s:
            return None
        self._polled_at = now
        if self._tracker is None:
            self._tracker = agent_cli_for(ctx.ws).usage(ctx.ws)
        # The hooks name each session's transcript (and a finished sub-agent's): that is
        # how token use follows an agent whose CLAUDE_CONFIG_DIR is not the room's.
        extra = {
            s[key]: name
            for name, s in ctx.statuses.items()
            for key in ("transcript_path", "subagent_transcript_path")
            if isinstance(s.get(key), str) and s[key]
        }
        self._tracker.poll(extra)
        summary = self._tracker.summary()
        self.summary = summary
        with contextlib.suppress(OSError):
            ctx.coord.store.write("usage.json", {"updated": now_iso(ctx.clock.time()), **summary})
        self._hold_to_budgets(summary)
        self._watch_contexts(summary)
        ctx.budgets.flush()
        return summary

    def _hold_to_budgets(self, summary: dict) -> None:
        ctx = self.ctx
        policy = ctx.ws.settings.agents.on_budget_exhausted
        for name, d in summary["domains"].items():
            limit = d.get("work_budget_tokens")
            if not limit or name not in ctx.ws.domains:
                continue
            exhausted = d["total"] >= limit
            ctx.budgets.work[name] = {
                "limit": limit,
                "used": d["total"],
                "exhausted": exhausted,
                "policy": policy,
                "tokens_per_min": d["tokens_per_min"],
                "minutes_left": d["minutes_left"],
            }
            ctx.budgets.touched(name)
            if exhausted and name not in self._exhausted:
                self._exhausted.add(name)
                ctx.emit(
                    Event(
                        "budget.work_exhausted",
                        f"{name}: used {d['total']} of its "
                        f"{limit} work tokens" + ("; pausing it" if policy == "pause" else ""),
                        agent=name,
                        level="error",
                        data={"used": d["total"], "limit": limit, "alert": True, "policy": policy},
                    )
                )
                if policy == "pause":
                    self._pause(name)
            elif not exhausted:
                self._exhausted.discard(name)

    def _watch_contexts(self, summary: dict) -> None:
        """An alert when an agent's context passes [agents] context_alert_pct: once per
        crossing (it is alerted again only after it went back under, e.g. after a /clear)."""
        ctx = self.ctx
        limit = ctx.ws.settings.agents.context_alert_pct
        for name, d in summary["domains"].items():
            used = d.get("context")
            high = isinstance(used, dict) and used.get("pct", 0) >= limit
            if not high:
                self._context_high.discard(name)
                continue
            if name in self._context_high or name not in ctx.ws.domains:
                continue
            self._context_high.add(name)
            ctx.emit(
                Event(
                    "agent.context_high",
                    f"{name}: its context is {used['pct']:.0f}% full "
                    f"({used['tokens']} of {used['window']} tokens; alert at {limit}%); "
                    f"`comm-node handoff {name}` asks it for a note and clears it",
                    agent=name,
                    level="warn",
                    data={
                        "tokens": used["tokens"],
                        "window": used["window"],
                        "pct": used["pct"],
                        "alert_pct": limit,
                        "alert": True,
                    },
                )
            )
