"""Each agent's status.json, as its hooks and `comm-node status set` write it: read on a
change (or a rescan), checked, and reported when the state or the task changed."""

from __future__ import annotations

from collections.abc import Callable

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.status import read_status, sane_heartbeat


class StatusMonitor:
    def __init__(self, ctx: EngineContext, on_state: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        # Told when a hook changed an agent's state (the screens are looked at closely then).
        self.on_state = on_state
        self._bad: set[str] = set()  # unreadable now (reported once until it is fixed)
        self._heartbeat_problems: dict[str, str | None] = {}

    def refresh(self, name: str) -> None:
        ctx = self.ctx
        dom = ctx.ws.domains.get(name)
        if dom is None:
            return
        try:
            status = read_status(dom.paths.status)
        except (ValueError, OSError) as exc:
            if name not in self._bad:
                self._bad.add(name)
                ctx.emit(Event("status.invalid", str(exc), agent=name, level="warn"))
            return
        self._bad.discard(name)
        if not status:
            return
        problem = sane_heartbeat(status, dom.paths.status, ctx.clock.time())
        if problem and problem != self._heartbeat_problems.get(name):
            ctx.emit(Event("status.invalid", problem, agent=name, level="warn"))
        self._heartbeat_problems[name] = problem
        before = ctx.statuses.get(name, {})
        ctx.statuses[name] = status
        if status != before:
            ctx.changed()  # progress text and heartbeats are not events, but they show
        state, task = status.get("state"), status.get("task")
        if state != before.get("state") and self.on_state is not None:
            self.on_state()
        if state != before.get("state") or task != before.get("task"):
            ctx.emit(
                Event(
                    "agent.state",
                    f"{name}: {state}" + (f" on {task}" if task else ""),
                    agent=name,
                    data={"state": state, "task": task, "progress": status.get("progress")},
                )
            )
