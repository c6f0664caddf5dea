"""The engine for the control room: in-process in a thread with its own event loop, or, when
`comm-node serve` already holds the workspace, a viewer that reads the files and the log.

A viewer follows the log, and watches the agents' and the engine's state directories (the
OS's notifications, as the engine does: nothing to poll) so that a status change reaches
its row at once instead of at the next timed refresh; its world is read from the files,
but a status file is parsed again only when it changed and the task graph is kept while
the tasks are the same (at 200 agents and 20,000 tasks, re-reading everything every few
seconds was most of its idle CPU).

`snapshot()` (called in a worker) publishes the latest World by a reference swap: `world` is
replaced, never edited, so any thread may read the one it got without a lock. Snapshots are
taken one at a time: one that waited finds the tasks the first one loaded."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.engine.pidlock import WorkspaceBusy, holder_pid
from comm_node_tui.engine.world import StatusReads, World
from comm_node_tui.protocol.events import Event, follow, tail
from comm_node_tui.workspace.model import Workspace


class EngineBridge:
    def __init__(
        self,
        ws: Workspace,
        on_event: Callable[[Event], None],
        clock=None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.ws = ws
        self.clock = clock
        self.on_change = on_change
        self.on_event = on_event
        self.engine = None
        self.viewer_of: str | None = None  # the pid of the engine we only watch
        self.coord = Coordinator(ws)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._follow_stop = threading.Event()
        self.failure: str | None = None
        self.world: World | None = None  # the latest snapshot, None before the first
        self._reads = StatusReads()  # a viewer's status files, parsed again when changed
        self._watcher: threading.Thread | None = None
        # One snapshot at a time: the room starts a read per burst of changes, and reads that
        # overlapped each loaded the tasks again before the first had cached them (a viewer
        # of 20,000 tasks parsed tasks.toml six times at start, a second and more each).
        self._snapshot_lock = threading.Lock()

    def start(self) -> None:
        from comm_node_tui.engine.engine import Engine

        pid = holder_pid(self.ws.paths.engine_lock)
        if pid is None:
            eng = Engine(self.ws)
            if eng.relay is not None:  # [cluster]: the other machines' rooms act through it
                from comm_node_tui.operator.remote import answer_requests

                answer_requests(eng)
            try:
                eng.start()
            except WorkspaceBusy as exc:
                pid = exc.pid
            else:
                self.engine = eng
                self.coord = eng.coord
                eng.subscribe(self.on_event)
                if self.on_change is not None:
                    eng.on_change(self.on_change)
                self._thread = threading.Thread(target=self._run, name="cn-engine", daemon=True)
                self._thread.start()
                return
        self.viewer_of = pid
        self._thread = threading.Thread(target=self._follow, name="cn-follow", daemon=True)
        self._thread.start()
        if self.on_change is not None:
            self._watcher = threading.Thread(target=self._watch, name="cn-watch", daemon=True)
            self._watcher.start()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.engine.run(self._stop)

        try:
            asyncio.run(main())
        except Exception as exc:  # reported in the header; the UI keeps running
            self.failure = f"{type(exc).__name__}: {exc}"
            self.on_event(Event("engine.fault", f"engine stopped: {self.failure}", level="error"))

    def _follow(self) -> None:
        if self.ws.settings.cluster.enabled:  # and the other machines' events the engine got
            from comm_node_tui.cluster.remote_log import follow_in_thread

            self.remote_follower = follow_in_thread(
                self.ws.paths.state, self.on_event, self._follow_stop
            )
        for ev in follow(self.ws.paths.events, stop=self._follow_stop.is_set, poll_s=0.2):
            self.on_event(ev)

    def watched(self) -> list[str]:
        """A viewer's directories to watch: each agent's status folder and the engine's
        state (panes, health, locks, pause, the task overlay). Not recursive: an inbox's
        mail is not the world."""
        import os

        paths = [d.paths.dir for d in self.ws.domains.values()]
        paths += [self.ws.paths.state, os.path.join(self.ws.paths.state, "state")]
        return [p for p in dict.fromkeys(paths) if os.path.isdir(p)]

    def _watch(self) -> None:
        from comm_node_tui.engine import inotify

        paths = self.watched()
        if not paths or self.on_change is None:
            return
        batches: Iterator[object]
        try:
            if inotify.available():  # blocks in select: no wake-up every step while idle
                batches = inotify.watch(paths, self._follow_stop, debounce_ms=20, step_ms=20)
            else:
                from watchfiles import watch

                batches = watch(
                    *paths,
                    recursive=False,
                    debounce=20,
                    step=20,
                    stop_event=self._follow_stop,
                    raise_interrupt=False,
                )
            for _changes in batches:
                self.on_change()
        except Exception as exc:  # no watcher (inotify limits): the timed refresh remains
            self.on_event(
                Event("viewer.watch_failed", f"{type(exc).__name__}: {exc}", level="warn")
            )

    def recent_events(self, n: int = 500) -> list[Event]:
        if self.ws.settings.cluster.enabled:  # the other machines' too (cluster/remote_log.py)
            from comm_node_tui.cluster.remote_log import recent

            return recent(self.ws.paths.events, self.ws.paths.state, n)
        return tail(self.ws.paths.events, n)

    def first_look(self) -> World:
        """The agents as their files say, with no tasks: shown before the engine's start,
        which parses and judges every task (seconds at 20,000 tasks), so the rows come first
        and the task panel follows when the first full world does."""
        from comm_node_tui.coordination.tasks import Readiness
        from comm_node_tui.engine.world import snapshot

        return snapshot(
            self.ws,
            self.coord,
            now=self.clock() if self.clock else None,
            tasks_view=({}, Readiness({}), []),
            reads=self._reads,
        )

    def snapshot(self) -> World:
        return self.numbered_snapshot(itertools.count())[1]

    def numbered_snapshot(self, numbers: Iterator[int]) -> tuple[int, World]:
        """A World and its number, drawn while it is read: a read that waited for another
        one gets a later number than it (numbered before waiting, the newer World could
        carry the older number and be dropped as stale by the room)."""
        with self._snapshot_lock:
            return next(numbers), self._snapshot()

    def _snapshot(self) -> World:
        if self.engine is not None:
            world = self.engine.snapshot()
        else:
            from comm_node_tui.engine.world import snapshot

            view = self.coord.load_tasks()  # cached until the task files change
            earlier = self.world.task_graph if self.world is not None else None
            world = snapshot(
                self.ws,
                self.coord,
                now=self.clock() if self.clock else None,
                tasks_view=view,
                # the same loaded tasks: the graph of 20,000 nodes is kept, not rebuilt
                graph=earlier if earlier is not None and earlier.built_from(view[1]) else None,
                reads=self._reads,
            )
        self.world = world
        return world

    def stop(self) -> None:
        self._follow_stop.set()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        for thread in (self._thread, self._watcher):
            if thread is not None:
                thread.join(timeout=10)
