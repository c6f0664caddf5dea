"""The integration coordinator, on the engine's timer: once every other domain's tasks are
done, the integration-role domain gets its contract (a native task and a message from
comm-node: integration/coordinator.py) and its agent is started in its pane; then the report
it writes is announced to the operator (integration.report, with the path) each time it is
written anew.

What was done is kept in `.comm-node/integration.json` before the pane is asked for, so a
restarted engine neither hands out the contract nor starts the agent a second time. A start
that fails is an alert (integration.coordinator_failed): the operator starts it with
`comm-node up NAME`, the engine does not retry on its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.integration.coordinator import (
    MARKER,
    TASK_ID,
    contract_fields,
    contract_message,
    coordinator_of,
    promised,
    ready,
    report_path,
)
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.messages import now_iso, render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.coordination.coordinator import TaskView


class IntegrationMonitor:
    def __init__(
        self,
        ctx: EngineContext,
        tasks: Callable[[], TaskView | None],
        start_pane: Callable[[str, Callable[[str, Exception], None]], None],
    ) -> None:
        self.ctx = ctx
        self._tasks = tasks  # the tasks monitor's current view
        self._start_pane = start_pane  # runs off the loop (PaneActions)
        self.marker: dict = {}

    def load(self) -> None:
        try:
            data = self.ctx.coord.store.read(MARKER, {})
        except (OSError, ValueError):
            data = {}
        self.marker = data if isinstance(data, dict) else {}

    def tick(self) -> None:
        ws = self.ctx.ws
        if not ws.settings.integration.coordinator:
            return
        dom = coordinator_of(ws)
        if dom is None:
            return
        if self.marker.get("started_at") is not None and self.marker.get("domain") == dom.name:
            self._watch_report(dom.name)
            return
        view = self._tasks()
        if view is None or not ready(dom.name, view[0]).ready:
            return
        self._start(dom.name, view)

    def _start(self, name: str, view: TaskView) -> None:
        ctx = self.ctx
        ws = ctx.ws
        dom = ws.domains[name]
        tasks = view[0]
        task_id = self._contract_task(name, tasks)
        manifests = {d.name: ctx.coord.manifest(d) for d in ws.domains.values()}
        body = contract_message(ws, dom, promised(ws, tasks, manifests), task_id)
        ident = f"integration-contract-{name}"
        meta = {
            "id": ident,
            "from": "comm-node",
            "to": [name],
            "type": "integration_contract",
            "priority": "high",
            "created": now_iso(ctx.clock.time()),
            "subject": "every domain is done: integrate and report",
        }
        if task_id:
            meta["task"] = task_id
        self.marker = {
            "domain": name,
            "started_at": ctx.clock.time(),
            "task": task_id,
            "report": report_path(ws, dom),
            "reported_mtime": None,
        }
        self._save()  # first: whatever happens next, never a second start
        try:
            ctx.router.deliver_copy(
                dom.paths.inbox, dom.paths.inbox_read, ident, render(meta, body)
            )
            ctx.router.delivered_to.add(name)
        except OSError as exc:
            ctx.emit(
                Event(
                    "integration.coordinator_failed",
                    f"{name}: the contract could not be delivered: {exc}",
                    agent=name,
                    level="error",
                )
            )
        ctx.emit(
            Event(
                "integration.coordinator_started",
                f"{name}: every other domain's tasks are done; integration coordinator "
                f"started (task {task_id or 'none'}, report {self.marker['report']})",
                agent=name,
                data={"task": task_id, "report": self.marker["report"]},
            )
        )
        self._start_pane(name, self._start_failed)

    def _start_failed(self, name: str, exc: Exception) -> None:
        """From the pane worker's thread (emit may be called from any thread)."""
        self.ctx.emit(
            Event(
                "integration.coordinator_failed",
                f"{name}: the integration coordinator could not be started: {exc}; "
                f"start it with `comm-node up {name}`",
                agent=name,
                level="error",
                data={"alert": True},
            )
        )

    def _contract_task(self, name: str, tasks: dict) -> str | None:
        """The coordinator's native task (created once; None when tasks are not native)."""
        from comm_node_tui.coordination.task_edit import add_native
        from comm_node_tui.errors import CommNodeError

        if TASK_ID in tasks:
            return TASK_ID
        try:
            entry = add_native(
                self.ctx.coord, TASK_ID, contract_fields(self.ctx.ws, self.ctx.ws.domains[name])
            )
        except CommNodeError as exc:  # beads / none as the source, a file it cannot edit
            self.ctx.emit(
                Event(
                    "integration.coordinator_failed",
                    f"{name}: no task for the contract ({exc}); it is in the message",
                    agent=name,
                    level="warn",
                )
            )
            return None
        return str(entry["id"])

    def _watch_report(self, name: str) -> None:
        path = self.marker.get("report")
        if not isinstance(path, str):
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        stamp = [st.st_mtime_ns, st.st_size]
        if self.marker.get("reported_mtime") == stamp:
            return
        self.marker["reported_mtime"] = stamp
        self._save()
        self.ctx.emit(
            Event(
                "integration.report",
                f"{name}: integration report written: {path}",
                agent=name,
                data={"path": path, "bytes": st.st_size},
            )
        )

    def _save(self) -> None:
        with contextlib.suppress(OSError):
            self.ctx.coord.store.write(MARKER, self.marker)
