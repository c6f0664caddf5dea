"""Liveness: is each agent alive, stuck, or gone (rules in engine/agent_state.py).

Only an agent whose process or pane is really gone, for longer than `heartbeat_lost_s`, has
its locks released and its claimed tasks put back to ready; silence never does that. Each
transition is one event (alerts at warn/error level).
"""

from __future__ import annotations

import time

from comm_node_tui.engine.agent_state import Health, judge, process_gone, shown_state
from comm_node_tui.engine.world import heartbeat_age
from comm_node_tui.protocol.events import Event


class Watchdog:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.health: dict[str, Health] = {}
        self._gone_since: dict[str, float] = {}

    def check(self, now: float | None = None) -> None:
        eng = self.engine
        now = time.time() if now is None else now
        changed = False
        for name in sorted(set(eng.agents) | set(eng.panes)):
            if name not in eng.ws.domains:
                continue
            status = eng.agents.get(name) or {}
            pane = eng.panes.get(name)
            age = heartbeat_age(status, now)
            gone = process_gone(status, pane)
            if gone:
                self._gone_since.setdefault(name, now)
            else:
                self._gone_since.pop(name, None)
            since = self._gone_since.get(name)
            new = judge(
                status,
                pane,
                shown=shown_state(status, pane, age, now),
                hook_age_s=age,
                still_s=eng.screen_still_s(name),
                gone_for_s=None if since is None else now - since,
                agents=eng.ws.agents,
            )
            if new == Health.SILENT and not eng.panes_polled:
                new = Health.OK  # its pane may simply not have been looked at yet
            old = self.health.get(name, Health.OK)
            if new == old:
                continue
            self.health[name] = new
            changed = True
            self._report(name, old, new, age, pane)
        if changed:
            eng.publish_agents()
            eng.changed()

    def _report(self, name: str, old: Health, new: Health, age, pane) -> None:
        eng = self.engine
        age_s = None if age is None else int(age)
        if new == Health.GONE and pane is None:
            # (a pane that dies is reported by the pane poll as agent.dead already)
            eng.emit(
                Event(
                    "agent.dead",
                    f"{name}: its Claude Code process is gone; `comm-node restart {name}`",
                    agent=name,
                    level="error",
                    data={"alert": True},
                )
            )
        elif new == Health.LOST:
            grace = eng.ws.agents.get("heartbeat_lost_s", 120)
            eng.emit(
                Event(
                    "agent.lost",
                    f"{name}: lost (gone for {grace:g} s); releasing its locks and tasks",
                    agent=name,
                    level="error",
                    data={"age_s": age_s, "alert": True},
                )
            )
            eng.coord.release(name, None, why="released: agent gone")
            eng.coord.unclaim_holder(name, "was gone")
        elif new == Health.STUCK:
            eng.emit(
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
            eng.emit(
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
            eng.emit(
                Event(
                    "agent.recovered",
                    f"{name}: working again (was {old})",
                    agent=name,
                    data={"was": str(old)},
                )
            )
