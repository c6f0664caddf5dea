"""The engine for the control room: in-process in a thread with its own event loop, or, when
`comm-node serve` already holds the workspace, a viewer that reads the files and the log.

`snapshot()` (called in a worker) publishes the latest World by a reference swap: `world` is
replaced, never edited, so any thread may read the one it got without a lock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.engine.pidlock import WorkspaceBusy, holder_pid
from comm_node_tui.engine.world import World
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

    def start(self) -> None:
        from comm_node_tui.engine.engine import Engine

        pid = holder_pid(self.ws.paths.engine_lock)
        if pid is None:
            eng = Engine(self.ws)
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
        for ev in follow(self.ws.paths.events, stop=self._follow_stop.is_set, poll_s=0.2):
            self.on_event(ev)

    def recent_events(self, n: int = 500) -> list[Event]:
        return tail(self.ws.paths.events, n)

    def snapshot(self) -> World:
        if self.engine is not None:
            world = self.engine.snapshot()
        else:
            from comm_node_tui.engine.world import snapshot

            world = snapshot(self.ws, self.coord, now=self.clock() if self.clock else None)
        self.world = world
        return world

    def stop(self) -> None:
        self._follow_stop.set()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
