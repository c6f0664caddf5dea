"""The task graph's readiness: recomputed when the source, the overlay or an artifact changed;
a task that became ready is an event (task.ready), and so is every reload (counts, problems)."""

from __future__ import annotations

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.coordination.coordinator import TaskView


class TasksMonitor:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.view: TaskView | None = None  # (tasks, Readiness, problems), on change only
        self.version = 0  # bumped on every change (the snapshot's graph cache follows it)
        self._stamp: object = None
        self._ready: set[str] = set()

    def tick(self) -> None:
        ctx = self.ctx
        stamp = ctx.coord.tasks_stamp()
        if stamp == self._stamp:
            return
        first = self._stamp is None
        self._stamp = stamp
        tasks, ready, problems = ctx.coord.load_tasks()
        self.view = (tasks, ready, problems)
        self.version += 1
        now_ready = set(ready.ready)
        if not first:
            for tid in sorted(now_ready - self._ready):
                t = tasks[tid]
                ctx.emit(
                    Event(
                        "task.ready",
                        f"{tid} is ready: {t.title}",
                        agent=t.domain,
                        data={"task": tid},
                    )
                )
        self._ready = now_ready
        counts = ready.counts()
        ctx.emit(
            Event(
                "tasks.loaded" if first else "tasks.changed",
                f"{len(tasks)} tasks: {counts['ready']} ready, {counts['in_progress']} "
                f"in progress, {counts['blocked']} blocked, {counts['done']} done",
                data={"counts": counts, "problems": problems[:20]},
                level="warn" if problems else "info",
            )
        )
