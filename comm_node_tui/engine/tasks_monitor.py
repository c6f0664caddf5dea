"""The task graph's readiness: recomputed when the source, the overlay or an artifact changed;
a task that became ready is an event (task.ready), and so is every reload (counts, problems)."""

from __future__ import annotations

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.messages import now_iso, render

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
                self._tell(tid, t.title, t.domain, t.assignee)
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

    def _tell(self, tid: str, title: str, domain: str | None, assignee: str | None) -> None:
        """Work wakes agents: a task that became ready is a message in its domain's inbox
        (its owner's, when one is assigned), which the nudger brings the agent to once it
        is at rest, through the delivery path (receipts)."""
        ctx = self.ctx
        name = assignee if assignee in ctx.ws.domains else domain
        dom = ctx.ws.domains.get(name) if name else None
        if dom is None:
            return
        now = ctx.clock.time()
        # One message per time it became ready (it can again after a reopen): the id holds
        # the task and the moment, and only safe characters (task ids come from Beads too).
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tid)[:60]
        ident = f"r-{safe}-{int(now * 1000)}"
        meta = {
            "id": ident,
            "from": "comm-node",
            "to": [dom.name],
            "type": "task_ready",
            "priority": "normal",
            "created": now_iso(now),
            "task": tid,
        }
        body = (
            f"Task {tid} is ready for {dom.name}: {title}\n"
            f"Read it with `comm-node task show {tid}`, claim it with "
            f"`comm-node task claim {tid}`.\n"
        )
        ctx.router.deliver_copy(dom.paths.inbox, dom.paths.inbox_read, ident, render(meta, body))
        ctx.router.delivered_to.add(dom.name)
