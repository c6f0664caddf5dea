"""A check the engine runs every so often: its blocking read in a thread, its result applied
on the loop, a failure one `engine.fault` event (the boundary and conflict monitors)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from comm_node_tui.protocol.events import Event


async def run_every(
    stop: asyncio.Event,
    interval_s: Callable[[], float],
    read: Callable[[], Any],
    apply: Callable[[Any], object],
    emit: Callable[[Event], object],
    what: str,
) -> None:
    """Check at once, then every interval_s() until `stop` (0 turns it off; the interval is
    asked again each time, so a config change takes effect)."""
    while not stop.is_set():
        every = interval_s()
        if every <= 0:
            await asyncio.sleep(5.0)  # off; look again in case the config changes
            continue
        try:
            apply(await asyncio.to_thread(read))
        except Exception as exc:
            emit(Event("engine.fault", f"{what}: {type(exc).__name__}: {exc}", level="error"))
        await asyncio.sleep(every)
