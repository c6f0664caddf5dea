"""The web server: the token gate (auth.py), the page, textual-serve's static files, and one
room process per websocket (textual-serve's AppService speaks the web driver's protocol).

Why not textual-serve's `Server` itself: its page fetches a font from the internet, builds
the websocket URL from the address the server bound (wrong behind an SSH tunnel), offers
file downloads the room never makes, and logs through Rich with locals in tracebacks. Its
process model is kept: each tab gets a room of its own, up to `max_rooms` at once; past that
a tab is refused with one line (each room is a Python process of some 50 MB).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import shlex
import signal
import sys
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from comm_node_tui.errors import CommNodeError
from comm_node_tui.web.auth import Gate, secure_headers
from comm_node_tui.web.keeper import EngineKeeper
from comm_node_tui.workspace.model import Workspace

STATIC = Path(files("textual_serve")) / "static"  # type: ignore[arg-type]
ENGINE_LOOK_S = 2.0  # how soon an engine that went away is replaced
ROOM_QUIT_S = 10.0  # a room asked to quit that has not after this long is killed
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Room(AppService):
    """One tab's room process; `end` makes sure it is gone (once, whoever asks first: the
    tab's handler or the server stopping)."""

    _ending: asyncio.Task[None] | None = None

    async def end(self) -> None:
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        await asyncio.shield(self._ending)

    async def _end(self) -> None:
        try:
            await asyncio.wait_for(self.stop(), ROOM_QUIT_S)
        except (TimeoutError, Exception):
            pass
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


class WebServer:
    def __init__(
        self,
        ws: Workspace,
        *,
        token: str,
        viewer: bool = False,
        layout: str | None = None,
        theme: str = "elder",
        max_rooms: int = 4,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.ws = ws
        self.viewer = viewer
        self.max_rooms = max_rooms
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.gate = Gate(token, self.log)
        self.keeper = EngineKeeper(ws)
        self.rooms: dict[Room, web.WebSocketResponse] = {}
        self.downloads = DownloadManager()  # AppService wants one; the room delivers nothing
        command = [sys.executable, "-m", "comm_node_tui.web.room", "--workspace", str(ws.root)]
        command += ["--theme", theme] + (["--layout", layout] if layout else [])
        command += ["--viewer"] if viewer else []
        # AppService runs it through a shell; `exec` makes the room the shell's process: one
        # process a tab instead of two, and a room that does not quit in ROOM_QUIT_S is the
        # process killed (killing a shell in front of it left the room running, orphaned)
        self.command = "exec " + shlex.join(command)
        title = f"comm-node · {ws.project}" + (" (read-only)" if viewer else "")
        page = (files("comm_node_tui.web") / "index.html").read_text()
        self._page = page.replace("$title", html.escape(title))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.gate.middleware])
        app.router.add_get("/", self.index)
        app.router.add_get("/ws", self.websocket)
        app.router.add_static("/static", STATIC)
        app.on_response_prepare.append(secure_headers)
        app.on_shutdown.append(self._close_rooms)
        return app

    async def index(self, request: web.Request) -> web.Response:
        try:
            size = max(8, min(int(request.query.get("fontsize", "16")), 48))
        except ValueError:
            size = 16
        return web.Response(
            text=self._page.replace("$font_size", str(size)), content_type="text/html"
        )

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self.rooms) >= self.max_rooms:
            self.log(f"comm-node web: refused a room: {self.max_rooms} are open (--max-rooms)")
            return web.Response(
                status=503, text=f"503: {self.max_rooms} rooms are open; close one first\n"
            )
        socket = web.WebSocketResponse(heartbeat=15)
        await socket.prepare(request)

        async def close() -> None:  # the room quit (q): the tab shows it ended
            await socket.close()

        room = Room(
            self.command,
            write_bytes=socket.send_bytes,
            write_str=socket.send_str,
            close=close,
            download_manager=self.downloads,
        )
        self.rooms[room] = socket
        self.log(f"comm-node web: a room opened for {request.remote} ({len(self.rooms)} open)")
        try:
            await room.start(_dimension(request, "width", 80), _dimension(request, "height", 24))
            await _pump(socket, room)
        finally:
            # a closed tab, the room's own quit (q) or the server stopping: the room's process
            # ends here; the engine (keeper.py) is not the room's and goes on
            await room.end()
            self.rooms.pop(room, None)
            self.log(f"comm-node web: a room closed ({len(self.rooms)} open)")
        return socket

    async def _close_rooms(self, _app: web.Application) -> None:
        """The server stops: every room ends and its tab is told (1001, going away)."""
        rooms = list(self.rooms.items())
        await asyncio.gather(*(room.end() for room, _socket in rooms))
        await asyncio.gather(
            *(socket.close(code=WSCloseCode.GOING_AWAY) for _room, socket in rooms)
        )

    async def keep_engine(self, stop: asyncio.Event) -> None:
        said = ""
        while not stop.is_set():
            who = await asyncio.to_thread(self.keeper.ensure)
            if self.keeper.failure:  # said once; the look above started another
                self.log(f"comm-node web: the engine stopped: {self.keeper.failure}")
                self.keeper.failure = None
            if who != said:
                self.log(f"comm-node web: {who}")
                said = who
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ENGINE_LOOK_S)


def _dimension(request: web.Request, name: str, default: int) -> int:
    try:
        return max(10, min(int(request.query.get(name, default)), 1000))
    except ValueError:
        return default


async def _pump(socket: web.WebSocketResponse, room: Room) -> None:
    """The browser's keys, sizes and focus to the room. A malformed message is dropped: the
    sender has the token, but a bad frame must not end the room with a traceback."""
    async for message in socket:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            kind, *rest = json.loads(message.data)
        except (ValueError, TypeError):
            continue
        data = rest[0] if rest else None
        if kind == "stdin" and isinstance(data, str):
            await room.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            try:
                width, height = int(data["width"]), int(data["height"])
            except (KeyError, TypeError, ValueError):
                continue
            await room.set_terminal_size(max(10, min(width, 1000)), max(5, min(height, 1000)))
        elif kind == "ping":
            await socket.send_json(["pong", data])
        elif kind == "blur":
            await room.blur()
        elif kind == "focus":
            await room.focus()


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(server: WebServer, host: str, port: int) -> None:
    """Until SIGINT or SIGTERM: the engine kept, the URL printed once, the rooms served."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(server.app(), access_log=None)  # a log line would hold the token
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CommNodeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    keeper = asyncio.create_task(server.keep_engine(stop))
    what = "read-only rooms" if server.viewer else "the control room"
    server.log(
        f"comm-node web: serving {what} of {server.ws.project} ({server.ws.root}) on "
        f"{url_host(host)}:{bound}; Ctrl-C stops"
    )
    # the one place the token is shown: stdout, once (never the event log, never stderr)
    print(f"http://{url_host(host)}:{bound}/?token={server.gate.token}", flush=True)
    try:
        await stop.wait()
    finally:
        server.log("comm-node web: stopping")
        await runner.cleanup()
        await keeper
        await asyncio.to_thread(server.keeper.stop)
