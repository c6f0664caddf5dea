"""comm-node serve: the engine, headless, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from comm_node_tui.commands.context import workspace


def serve(args) -> int:
    from comm_node_tui.commands.log_cmd import format_event
    from comm_node_tui.engine.engine import Engine

    ws = workspace(args)
    engine = Engine(ws)
    if engine.relay is not None:  # [cluster]: the other machines' rooms act through us
        from comm_node_tui.operator.remote import answer_requests

        answer_requests(engine)
    if not args.quiet:
        engine.subscribe(lambda ev: print(format_event(ev), flush=True))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine.start()  # raises WorkspaceBusy at once when another engine holds it
        print(
            f"comm-node: serving {ws.project} at {ws.root} ({len(ws.domains)} domains); "
            "Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        await engine.run(stop)

    asyncio.run(main())
    return 0
