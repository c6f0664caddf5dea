"""comm-node web: the control room in a browser (docs/web.md)."""

from __future__ import annotations

import sys

from comm_node_tui.commands.context import workspace
from comm_node_tui.errors import CommNodeError

INSTALL = "pip install 'comm-node-tui[web]'"


def web(args) -> int:
    ws = workspace(args)
    try:
        import aiohttp  # noqa: F401
        import textual_serve  # noqa: F401
    except ImportError as exc:
        raise CommNodeError(
            f"`comm-node web` needs the web extra ({exc.name} is missing): {INSTALL}"
        ) from None
    import asyncio

    from comm_node_tui.web.auth import new_token
    from comm_node_tui.web.server import LOCAL_HOSTS, WebServer, serve

    if not 0 <= args.port <= 65535:
        raise CommNodeError(f"--port {args.port}: a port is 0 to 65535 (0: any free one)")
    if args.max_rooms < 1:
        raise CommNodeError(f"--max-rooms {args.max_rooms}: at least 1")
    if args.host not in LOCAL_HOSTS:
        print(
            f"comm-node web: warning: listening on {args.host}, not 127.0.0.1: whoever can "
            "reach it and has the URL can act on your agents; an SSH tunnel is safer "
            "(docs/web.md)",
            file=sys.stderr,
            flush=True,
        )
    server = WebServer(
        ws,
        token=new_token(),
        viewer=args.viewer,
        layout=args.layout,
        theme=args.theme,
        max_rooms=args.max_rooms,
    )
    asyncio.run(serve(server, args.host, args.port))
    return 0
