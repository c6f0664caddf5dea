"""`comm-node web`: the control room in a browser (docs/web.md).

The same room as in a terminal, run by textual-serve's process model: one room process per
browser tab, speaking Textual's web driver over a websocket. In front of it a token
(auth.py); behind it one engine that `comm-node web` keeps running (keeper.py), so a tab
that closes ends only its own room. aiohttp and textual-serve come from the `web` extra and
are imported only here, never on the CLI's path.
"""
