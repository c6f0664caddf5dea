"""The real engine running as `comm-node serve` runs it (Engine.run on an asyncio loop), in a
thread of the test: its watcher, timers and workers live, the test acting from outside."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.waiting import wait_for


@contextmanager
def running_engine(eng) -> Iterator[dict]:
    """Run `eng` until the block ends, then stop it and wait for its thread. Yields what the
    loop thread is: {"thread": its ident, "loop": its loop} (the stop is the engine's own)."""
    running: dict = {}

    async def main() -> None:
        running["stop"] = asyncio.Event()
        running["loop"] = asyncio.get_running_loop()
        running["thread"] = threading.get_ident()
        await eng.run(running["stop"])

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="engine-under-test")
    thread.start()
    try:
        wait_for(lambda: "stop" in running or not thread.is_alive(), timeout=30)
        yield running
    finally:
        if "stop" in running:
            running["loop"].call_soon_threadsafe(running["stop"].set)
        thread.join(30)
    assert not thread.is_alive(), "the engine did not stop within 30 s"
