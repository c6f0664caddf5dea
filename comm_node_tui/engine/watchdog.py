"""Heartbeats: stale after heartbeat_stale_s, lost after heartbeat_lost_s.

A lost agent's locks are released and its claimed tasks go back to ready; an agent that
comes back is recovered. Each transition is one event (alerts at warn/error level).
"""

from __future__ import annotations

from comm_node_tui.engine.world import agent_view
from comm_node_tui.protocol.events import Event

OK, STALE, LOST = "ok", "stale", "lost"


class Watchdog:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.health: dict[str, str] = {}

    def check(self, now: float | None = None) -> None:
        eng = self.engine
        for name, status in list(eng.agents.items()):
            if name not in eng.ws.domains:
                continue
            view = agent_view(eng.ws, name, status, now)
            if view["heartbeat_age_s"] is None:
                continue
            new = LOST if view["lost"] else STALE if view["stale"] else OK
            old = self.health.get(name, OK)
            if new == old:
                continue
            self.health[name] = new
            age = int(view["heartbeat_age_s"])
            if new == STALE:
                eng.emit(
                    Event(
                        "agent.stale",
                        f"{name}: no heartbeat for {age} s",
                        agent=name,
                        level="warn",
                        data={"age_s": age},
                    )
                )
            elif new == LOST:
                eng.emit(
                    Event(
                        "agent.lost",
                        f"{name}: lost (no heartbeat for {age} s); releasing its locks and tasks",
                        agent=name,
                        level="error",
                        data={"age_s": age, "alert": True},
                    )
                )
                eng.coord.release(name, None, why="released: agent lost")
                eng.coord.unclaim_holder(name, "was lost")
            elif old in (STALE, LOST):
                eng.emit(
                    Event(
                        "agent.recovered",
                        f"{name}: heartbeat again (was {old})",
                        agent=name,
                        data={"was": old},
                    )
                )
