"""An engine for the workspace while `comm-node web` serves: its own, in a thread with its
own event loop (as the terminal room runs one), unless another process already holds the
workspace (`comm-node serve`, a room in a terminal). When that one goes, the keeper takes
the workspace over at its next look, so the browser's rooms never lose their engine. The
rooms only watch (web/room.py): a closed tab cannot take the engine down."""

from __future__ import annotations

import asyncio
import threading

from comm_node_tui.engine.engine import Engine
from comm_node_tui.engine.pidlock import WorkspaceBusy, holder_pid
from comm_node_tui.workspace.model import Workspace


class EngineKeeper:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.engine: Engine | None = None
        self.failure: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def ensure(self) -> str:
        """Start an engine if none holds the workspace; says who holds it now."""
        if self._thread is not None and self._thread.is_alive():
            return "engine in-process"
        pid = holder_pid(self.ws.paths.engine_lock)
        if pid is not None:
            return f"engine pid {pid}"
        engine = Engine(self.ws)
        try:
            engine.start()  # takes the lock here, so a failure is known at once
        except WorkspaceBusy as exc:  # another took it between the look and the start
            return f"engine pid {exc.pid}"
        self.engine = engine
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(engine, ready), name="cn-web-engine", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        return "engine in-process"

    def _run(self, engine: Engine, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            ready.set()
            await engine.run(self._stop)

        try:
            asyncio.run(main())
        except Exception as exc:  # the next look starts another (ensure)
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            ready.set()

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is not None and thread.is_alive() and loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=15)
        self._thread = None
        self._loop = self._stop = None
