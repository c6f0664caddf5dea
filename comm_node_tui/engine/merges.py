"""The merge queue, run by the engine: whenever `.comm-node/merge-queue.json` holds a queued
entry, one pass (integration/queue.py) in a worker thread.

The engine runs it, rather than leaving it to `comm-node merge --run`, so that queuing is all
anyone does: the room's merge key, an agent's `comm-node merge`, and the entries left by a
crash are all taken without someone remembering to run a pass. `merge --run` stays for a
workspace with no engine; the queue's pass lock keeps the two from running at once. A pass
can take minutes (verify commands, integration tests), so it never runs on the loop thread;
its messages land in the domains' inboxes, which the watcher turns into nudges like any mail.
"""

from __future__ import annotations

import asyncio

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.protocol.events import Event

POLL_S = 2.0  # how often the queue file is looked at (a stat and, when it changed, a read)


class MergeMonitor:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._seen: float | None = None  # the queue file's mtime at the last look

    def due(self) -> bool:
        """Whether the queue file changed since the last look and holds a queued entry (a
        pass that ran leaves nothing queued, so an unchanged file needs no pass)."""
        from comm_node_tui.integration.queue import QUEUE_FILE, QUEUED

        store = self.ctx.coord.store
        mtime = store.mtime(QUEUE_FILE)
        if mtime is None or mtime == self._seen:
            return False
        self._seen = mtime
        try:
            data = store.read(QUEUE_FILE, {})
        except ValueError as exc:  # once per change of the file; nothing to take from it
            self.ctx.emit(Event("merge.queue_invalid", str(exc), level="warn"))
            return False
        entries = data.get("entries") if isinstance(data, dict) else None
        return any(isinstance(e, dict) and e.get("state") in (QUEUED, "running")
                   for e in entries or [])  # fmt: skip

    def run_pass(self) -> list[dict] | None:
        """One pass, blocking (a worker thread)."""
        from comm_node_tui.integration.queue import MergeQueue

        return MergeQueue(self.ctx.coord).run_pass()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.due():
                    done = await asyncio.to_thread(self.run_pass)
                    if done:
                        self.ctx.changed()
            except Exception as exc:  # one bad pass must not stop the engine
                self.ctx.emit(
                    Event(
                        "engine.fault", f"merge queue: {type(exc).__name__}: {exc}", level="error"
                    )
                )
            await asyncio.sleep(POLL_S)
