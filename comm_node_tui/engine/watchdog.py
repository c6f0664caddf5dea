"""Liveness: is each agent alive, stuck, or gone (rules in engine/agent_state.py).

Only an agent whose process or pane is really gone, for longer than `heartbeat_lost_s`, has
its locks released and its claimed tasks put back to ready; silence never does that. Each
transition is one event (alerts at warn/error level).

It reads the shared statuses and panes, writes the shared health (EngineContext), and is
handed what it needs of the screens explicitly: how long a screen has been still, and how
to publish agents.json.
"""

from __future__ import annotations

from collections.abc import Callable

from comm_node_tui.engine.agent_state import Health, judge, process_gone, shown_state
from comm_node_tui.engine.context import EngineContext
from comm_node_tui.engine.spiral import SpiralWatch
from comm_node_tui.engine.world import heartbeat_age
from comm_node_tui.protocol.events import Event


class Watchdog:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        still_s: Callable[[str], float | None],
        publish: Callable[[], None],
    ) -> None:
        self.ctx = ctx
        self._still_s = still_s
        self._publish = publish
        self._gone_since: dict[str, float] = {}
        self.spiral = SpiralWatch(ctx)

    @property
    def health(self) -> dict[str, Health]:
        return self.ctx.health

    def check(self, now: float | None = None) -> None:
        ctx = self.ctx
        now = ctx.clock.time() if now is None else now
        changed = False
        for name in sorted(set(ctx.statuses) | set(ctx.panes)):
            if name not in ctx.ws.domains or name in ctx.router.remote_domains:
                continue  # ([cluster]) another machine's engine judges its own agents
            status = ctx.statuses.get(name) or {}
            pane = ctx.panes.get(name)
            age = heartbeat_age(status, now)
            gone = process_gone(status, pane)
            if gone:
                self._gone_since.setdefault(name, now)
            else:
                self._gone_since.pop(name, None)
            since = self._gone_since.get(name)
            shown = shown_state(status, pane, age, now)
            self.spiral.check(name, status, shown, now)
            new = judge(
                status,
                pane,
                shown=shown,
                hook_age_s=age,
                still_s=self._still_s(name),
                gone_for_s=None if since is None else now - since,
                agents=ctx.ws.settings.agents,
            )
            if new == Health.SILENT and not ctx.panes_polled:
                new = Health.OK  # its pane may simply not have been looked at yet
            old = self.health.get(name, Health.OK)
            if new == old:
                continue
            self.health[name] = new
            changed = True
            self._report(name, old, new, age, pane)
        if changed:
            self._publish()
            ctx.changed()

    def _report(
        self, name: str, old: Health, new: Health, age: float | None, pane: dict | None
    ) -> None:
        ctx = self.ctx
        age_s = None if age is None else int(age)
        if new == Health.GONE and pane is None:
            # (a pane that dies is reported by the pane poll as agent.dead already)
            ctx.emit(
                Event(
                    "agent.dead",
                    f"{name}: its Claude Code process is gone; `comm-node restart {name}`",
                    agent=name,
                    level="error",
                    data={"alert": True},
                )
            )
        elif new == Health.LOST:
            grace = ctx.ws.settings.agents.heartbeat_lost_s
            ctx.emit(
                Event(
                    "agent.lost",
                    f"{name}: lost (gone for {grace:g} s); releasing its locks and tasks",
                    agent=name,
                    level="error",
                    data={"age_s": age_s, "alert": True},
                )
            )
            ctx.coord.release(name, None, why="released: agent gone")
            ctx.coord.unclaim_holder(name, "was gone")
        elif new == Health.STUCK:
            ctx.emit(
                Event(
                    "agent.stuck",
                    f"{name}: busy with no hook and no change on screen for {age_s} s; "
                    f"look at it (`comm-node peek {name}`), interrupt or restart it",
                    agent=name,
                    level="warn",
                    data={"age_s": age_s, "alert": True},
                )
            )
        elif new == Health.SILENT:
            ctx.emit(
                Event(
                    "agent.stale",
                    f"{name}: busy, no heartbeat for {age_s} s, and no pane or process "
                    "comm-node can look at",
                    agent=name,
                    level="warn",
                    data={"age_s": age_s},
                )
            )
        elif new == Health.OK and old != Health.GONE:
            ctx.emit(
                Event(
                    "agent.recovered",
                    f"{name}: working again (was {old})",
                    agent=name,
                    data={"was": str(old)},
                )
            )
