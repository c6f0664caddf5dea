"""The comm node: one per workspace. Watches every outbox and status file and routes.

A composition root: builds one EngineContext (the workspace and its services, the clock, how
to report, the plain state several monitors read) and the monitors, each with one job and a
small interface (docs/architecture.md lists them); runs the watcher and the timers and
dispatches to them. What a monitor needs of another is handed to it here, never reached for.

Threading rule: engine state (the context, every monitor's bookkeeping) changes only on the
engine's event-loop thread (with no loop: on the one thread driving the engine, as start()
and the tests do). Blocking work runs in worker threads and hands plain results back: the
screens' tmux reads (ScreenRead) and the boundary check (BoundaryRead) via asyncio.to_thread,
tmux side effects via PaneActions.refused. Two exceptions: emit() may be called from any
thread (EventHub serialises it), and snapshot() from the control room's (it copies).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from comm_node_tui.coordination.budgets import Budgets
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.ledger import Ledger
from comm_node_tui.engine.artifacts import ArtifactAnnouncer
from comm_node_tui.engine.boundaries_monitor import BoundaryMonitor
from comm_node_tui.engine.clock import Clock, SystemClock
from comm_node_tui.engine.conflicts import ConflictMonitor
from comm_node_tui.engine.context import EngineContext
from comm_node_tui.engine.domains import DomainMonitor
from comm_node_tui.engine.hub import EventHub
from comm_node_tui.engine.integration_monitor import IntegrationMonitor
from comm_node_tui.engine.journal import JournalKeeper
from comm_node_tui.engine.merges import MergeMonitor
from comm_node_tui.engine.needs import OperatorMail
from comm_node_tui.engine.notify import Notifier
from comm_node_tui.engine.nudges import Nudger, PaneActions
from comm_node_tui.engine.pidlock import EngineLock
from comm_node_tui.engine.resources import ResourceMonitor
from comm_node_tui.engine.router import Router
from comm_node_tui.engine.screens import ScreenMonitor
from comm_node_tui.engine.status import StatusMonitor
from comm_node_tui.engine.tasks_monitor import TasksMonitor
from comm_node_tui.engine.usage_monitor import UsageMonitor
from comm_node_tui.engine.watchdog import Watchdog
from comm_node_tui.engine.watched import Changes, sort_changes, watch
from comm_node_tui.protocol.events import Event, EventLog
from comm_node_tui.protocol.fileio import ensure_dir
from comm_node_tui.workspace.model import Workspace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from comm_node_tui.coordination.coordinator import TaskView
    from comm_node_tui.engine.world import TaskGraph, World


class HubCoordinator(Coordinator):
    """The engine's Coordinator: its events (locks, claims, grants) go through the engine's
    hub instead of straight to the log, so subscribers (the room) see them too."""

    def __init__(self, ws: Workspace, emit: Callable[[Event], None]) -> None:
        super().__init__(ws)
        self._emit = emit

    def emit(self, event: Event) -> None:
        self._emit(event)


class Engine:
    def __init__(
        self,
        ws: Workspace,
        *,
        debounce_ms: int = 30,
        step_ms: int = 5,
        rescan_s: float = 2.0,
        event_log_bytes: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.rescan_s = rescan_s
        self.tick_s = 1.0
        ensure_dir(ws.paths.state)
        kwargs = {"max_bytes": event_log_bytes} if event_log_bytes else {}
        self.log = EventLog(ws.paths.events, **kwargs)
        self.lock = EngineLock(ws.paths.engine_lock)
        hub = self.hub = EventHub(self.log)
        self.recent, self.emit, self.changed = hub.recent, hub.emit, hub.changed
        self.subscribe, self.on_change = hub.subscribe, hub.on_change
        self.ledger = Ledger.in_store(ws.paths.state)
        self.budgets = Budgets(ws, self.ledger)
        self.router = Router(ws, self.ledger, self.budgets, self.emit)
        self.coord = HubCoordinator(ws, self.emit)
        self.relay = None  # [cluster]: mail, coordination and state across machines
        if ws.settings.cluster.enabled:
            from comm_node_tui.cluster.relay import Relay

            self.relay = Relay(ws, self.emit, show=hub.show)
            self.router.remote_domains = self.relay.remote_domains
            self.router.remote, self.router.acked = self.relay.send, self.relay.acked
            self.router.ack_wait_s = ws.settings.cluster.timeout_s
            self.subscribe(self.relay.share)  # this machine's agents' events, for other rooms
        ctx = self.ctx = EngineContext(
            ws, self.coord, self.ledger, self.budgets, self.router, self.emit, self.changed,
            clock or SystemClock(),
        )  # fmt: skip
        self.domains = DomainMonitor(ctx)
        self.screens = ScreenMonitor(ctx)
        self.status = StatusMonitor(ctx, on_state=self.screens.poke)
        self.watchdog = Watchdog(ctx, still_s=self.screens.still_s, publish=self.screens.publish)
        self.actions = PaneActions(ctx)
        self.nudger = Nudger(ctx, self.actions)
        self.usage = UsageMonitor(ctx, pause=self.actions.pause)
        self.tasks = TasksMonitor(ctx)
        self.artifacts = ArtifactAnnouncer(ctx)
        self.boundary_monitor = BoundaryMonitor(ctx)
        self.merges = MergeMonitor(ctx)  # the merge queue's passes (integration/queue.py)
        self.conflicts = ConflictMonitor(ctx)  # conflicts ahead of time (issue 18)
        self.integration = IntegrationMonitor(ctx, lambda: self.tasks.view, self.actions.start)
        self.journal = JournalKeeper(ctx)
        self.mail = OperatorMail(ws.paths.operator)  # the operator's unread mail, cached
        self.notifier = Notifier(ctx)
        self.resources = ResourceMonitor(ctx)  # the agents' CPU and memory (issue 23)
        # The engine's single operations, as callers (CLI, room, tests) know them.
        self.refresh_status = self.status.refresh
        self.refresh_usage = self.usage.tick
        self.reload_config = self.domains.reload_config
        self.check_boundaries = self.boundary_monitor.check
        self.check_conflicts = self.conflicts.check
        self._graph_cache: tuple[int, TaskGraph] | None = None
        self.started = False

    # What the rest of the code reads; it lives in the context and the monitors. (Typed
    # properties, not `property(lambda ...)`: mypy gives a lambda's result the type Any.)
    @property
    def ws(self) -> Workspace:
        return self.ctx.ws

    @property
    def agents(self) -> dict[str, dict]:
        return self.ctx.statuses

    @property
    def panes(self) -> dict[str, dict]:
        return self.ctx.panes

    @property
    def pane_poll_s(self) -> float:
        return self.screens.poll_s

    @property
    def boundaries(self) -> dict | None:
        return self.boundary_monitor.data

    @property
    def usage_summary(self) -> dict | None:
        return self.usage.summary

    @property
    def tasks_view(self) -> TaskView | None:
        return self.tasks.view

    @property
    def tasks_version(self) -> int:
        return self.tasks.version

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Take the workspace, recover, route what waited while no engine ran."""
        self.lock.acquire()
        if self.relay is not None:
            self.relay.start()
        self.ledger.load()
        self.domains.start()
        self.emit(
            Event(
                "engine.started",
                f"engine up for {self.ws.project} "
                f"({len(self.ws.domains)} domains, pid {os.getpid()})",
                data={"pid": os.getpid(), "domains": sorted(self.ws.domains)},
            )
        )
        self.scan()
        # Everything waiting has been routed: the journal can shrink to its totals.
        with contextlib.suppress(OSError):
            self.ledger.compact(keep_ids=set())
        self.budgets.flush(everything=True)
        self.artifacts.load()
        self.conflicts.load()
        self.integration.load()
        self.tick()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        self.actions.drain()  # a nudge being typed reports before "engine.stopped"
        self.notifier.stop()  # likewise a notification being sent
        self.screens.close()
        self.emit(
            Event(
                "engine.stopped",
                f"engine down (routed {self.router.routed}, bounced {self.router.bounced})",
            )
        )
        if self.relay is not None:
            self.relay.stop()
            self.coord.store.close()  # type: ignore[attr-defined]  # the ClusterStore's
        self.ledger.close()
        self.hub.close()
        self.lock.release()

    # ---- work ---------------------------------------------------------------------------
    def scan(self) -> int:
        """Route every outbox and refresh every status; the number of messages handled."""
        handled = 0
        for dom in self.ws.domains.values():
            handled += self.router.scan_outbox(dom)
            self.status.refresh(dom.name)
        self.budgets.flush()
        return handled

    def tick(self) -> None:
        """The timers: domains, the journal, locks, liveness, artifacts, tasks, usage and
        nudges (each monitor decides whether it is due)."""
        self.domains.check()
        self.journal.tick()
        self.coord.expire_locks()
        self.watchdog.check()
        self.artifacts.tick()
        self.tasks.tick()
        self.integration.tick()  # after the tasks: it reads their view
        self.usage.tick()
        self.nudger.tick()
        self.resources.tick()
        self.notify()
        if self.relay is not None:
            # what the other machines' rooms show
            self.relay.publish_state(self.agents, self.panes, self.watchdog.health)

    def notify(self) -> None:
        """Tell whoever [notify] names about what newly waits on the operator (the room,
        when open, rings its own bell: tui/app.py)."""
        if self.notifier.active():
            self.notifier.observe(self.snapshot().needs)

    def handle_changes(self, changes: Changes) -> None:
        """One batch from the watcher, handled in one go (local file IO is fast) by whoever
        minds those files; budgets are flushed once per batch."""
        batch = sort_changes(self.ws, changes)
        if batch.config:
            self.domains.reload_config()  # first: the rest is read with the new config
        for name in batch.outboxes:
            dom = self.ws.domains.get(name)
            if dom is not None:
                self.router.scan_outbox(dom)
        for name in batch.statuses:
            self.status.refresh(name)
        if batch.artifacts:
            self.artifacts.tick()
        if batch.artifacts or batch.tasks:
            self.tasks.tick()  # a task that became ready is mail for its agent, now
        # New mail by any path (the router's deliveries are counted as they are routed, a
        # ready task's as it is told): the nudger looks now, not at the next timer pass; the
        # timer (tick_s) stays for what no file says: an agent come to rest, a retry due.
        self.router.delivered_to.update(batch.inboxes)
        if self.router.delivered_to:
            self.nudger.tick()
        self.budgets.flush()
        if batch.outboxes or batch.statuses:  # a prompt or a message to the operator, at once
            self.notify()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start, then route until `stop` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        if not self.started:
            self.start()
        self.ctx.panes_polled = False
        loops = [
            asyncio.create_task(self._rescan_loop(stop)),
            asyncio.create_task(self.screens.run(stop)),
            asyncio.create_task(self.boundary_monitor.run(stop)),
            asyncio.create_task(self.merges.run(stop)),
            asyncio.create_task(self.conflicts.run(stop)),
        ]
        try:
            await watch(
                lambda: self.ws,
                stop,
                self._handle_batch,
                debounce_ms=self.debounce_ms,
                step_ms=self.step_ms,
            )
        finally:
            for task in loops:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.stop()

    async def _rescan_loop(self, stop: asyncio.Event) -> None:
        """The timers; and a rescan, for what the OS watcher missed (inotify overflow, a
        directory created after start)."""
        last_scan: float | None = None
        clock = self.ctx.clock
        while not stop.is_set():
            await asyncio.sleep(self.tick_s)
            try:
                if last_scan is None or clock.monotonic() - last_scan >= self.rescan_s:
                    last_scan = clock.monotonic()
                    self.domains.reload_config()
                    self.scan()
                self.tick()
            except Exception as exc:  # keep routing; report the fault once per pass
                self._fault("timer pass failed: ", exc)

    def _handle_batch(self, changes: Changes) -> None:
        try:
            self.handle_changes(changes)
        except Exception as exc:  # one bad batch must not stop the engine
            self._fault("", exc)

    def _fault(self, what: str, exc: Exception) -> None:
        self.emit(Event("engine.fault", f"{what}{type(exc).__name__}: {exc}", level="error"))

    def snapshot(self) -> World:
        """The typed, immutable World the control room renders. The task graph is rebuilt
        only when the tasks changed (tasks_version). Called from the room's thread: it reads
        copies, and swaps its one cache tuple whole."""
        from comm_node_tui.engine.world import on_other_machines, snapshot

        statuses, panes, health = dict(self.agents), dict(self.panes), dict(self.watchdog.health)
        nodes: dict[str, tuple[str, float | None]] = {}
        if self.relay is not None:  # the other machines' agents, as their engines publish them
            nodes = self._remote_rows(statuses, panes, health)
        graph = None
        if self._graph_cache is not None and self._graph_cache[0] == self.tasks_version:
            graph = self._graph_cache[1]
        world = snapshot(
            self.ws,
            self.coord,
            statuses=statuses,
            panes=panes,
            tasks_view=self.tasks_view,
            budgets=self.budgets,
            usage=self.usage_summary,
            tasks_version=self.tasks_version,
            graph=graph,
            boundaries=self.boundaries,
            health=health,
            now=self.ctx.clock.time(),  # the engine's clock (a test's ManualClock too)
            mail=self.mail,
            conflicts=self.conflicts.to_json(),
            resources=self.resources.latest,
        )
        self._graph_cache = (self.tasks_version, world.task_graph)
        return on_other_machines(world, nodes) if nodes else world

    def _remote_rows(
        self, statuses: dict, panes: dict, health: dict
    ) -> dict[str, tuple[str, float | None]]:
        """Fill the rows of agents on other machines from their engines' published state
        (this machine has no status, pane or judgement of its own for them); domain ->
        (its node, seconds since that node last published; "" and None: none has)."""
        from comm_node_tui.cluster.view import fill_remote

        assert self.relay is not None
        return fill_remote(
            self.relay.remote_domains,
            self.relay.remote_nodes,
            self.relay.owners(),
            self.ctx.clock.time(),
            statuses,
            panes,
            health,
        )
