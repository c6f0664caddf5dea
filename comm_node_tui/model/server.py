"""The scripted model's HTTP server: a stand-in for the Anthropic Messages API on 127.0.0.1.

Built on the standard library's `http.server.ThreadingHTTPServer`: it adds no dependency (the
product ships it, not only the tests), its surface is tiny (two POST endpoints), and HTTP/1.1
with keep-alive, chunked transfer and server-sent events is all Claude Code needs. A thread
per connection is plenty for a few dozen agents, and a slow stream only holds its own thread.

It binds 127.0.0.1 only: it answers anyone who can reach it, without a key check, so it must
not be reachable from elsewhere. Nothing a client sends reaches stderr as a traceback: bad
bodies get Anthropic-shaped 4xx errors, a client that goes away mid-stream ends only its own
response, and every request lands in the request log.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from comm_node_tui.errors import CommNodeError
from comm_node_tui.model import sse
from comm_node_tui.model.log import LogEntry, RequestLog, preview
from comm_node_tui.model.player import Player, Reply
from comm_node_tui.model.script import ERROR_TYPES, Script, load_script
from comm_node_tui.model.turn import read_turn, reminders

HOST = "127.0.0.1"
MAX_BODY = 32 * 1024 * 1024  # Claude Code's requests are ~50 KB to a few MB (long sessions)
MAX_DISCARD = 1024 * 1024 * 1024  # a larger body is refused without reading it away
PING_EVERY = 5.0  # seconds of silence in a slow stream before a ping keeps it alive
GATE_POLL = 0.05  # how often a held reply looks for its gate file
IDLE_TIMEOUT = 600.0  # an idle keep-alive connection is closed after this
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
EARLIER_KEPT = 10  # earlier prompts a log entry keeps: enough to see a conversation went on


class _Stopped(Exception):
    """The server is stopping: abandon the response in progress."""


class _ClientGone(Exception):
    pass


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck connection never keeps the process alive
    allow_reuse_address = True  # `model serve --port N` restarts at once on the same port

    def __init__(self, model: ScriptedModel, port: int) -> None:
        self.model = model
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr. A handler never raises on purpose (it
        # answers errors itself), so what is left is a connection torn down under it.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "comm-node-scripted-model"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, False)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request log replaces the access log on stderr

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server calls this for requests it cannot parse (bad request line, huge
        # headers, unknown method): answer in Anthropic's shape, not HTML.
        entry = LogEntry(
            time=time.time(),
            method=getattr(self, "command", "") or "",
            path=getattr(self, "path", "") or "",
        )
        entry.request_id = sse.new_request_id()
        reason = message or HTTPStatus(code).phrase
        if getattr(self, "request_version", "") in ("", "HTTP/0.9"):
            self.request_version = "HTTP/1.1"  # unparsed: still answer with a status line
        try:
            self.reply_error(entry, code, _error_type(code), reason, close=True)
        except _ClientGone:
            pass
        self.server.model.log_entry(entry)

    def _dispatch(self) -> None:
        self.server.model.handle(self)

    do_POST = do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    # ---- writing --------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone(str(exc)) from None

    def start_response(
        self,
        entry: LogEntry,
        status: int,
        content_type: str,
        length: int | None,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        entry.status = status
        try:
            self.send_response(status)
            self.send_header("request-id", entry.request_id)
            self.send_header("content-type", content_type)
            if length is None:
                self.send_header("transfer-encoding", "chunked")
                self.send_header("cache-control", "no-cache")
            else:
                self.send_header("content-length", str(length))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if close:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
        except OSError as exc:
            raise _ClientGone(str(exc)) from None

    def reply_json(
        self,
        entry: LogEntry,
        status: int,
        data: dict,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(data, ensure_ascii=False).encode()
        self.start_response(entry, status, "application/json", len(body), close, headers)
        if self.command != "HEAD":
            self.write(body)
        entry.completed = True

    def reply_error(
        self,
        entry: LogEntry,
        status: int,
        error_type: str,
        message: str,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        entry.error = f"{status} {error_type}: {message}"
        body = sse.error_body(error_type, message, entry.request_id)
        self.reply_json(entry, status, body, close=close, headers=headers)

    def write_chunk(self, data: bytes) -> None:
        self.write(b"%X\r\n%s\r\n" % (len(data), data))


def _error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class ScriptedModel:
    """The scripted model: `start()` serves on 127.0.0.1 (port 0 = any free one) and returns
    the base URL for ANTHROPIC_BASE_URL; `stop()` ends it. A context manager too."""

    def __init__(
        self,
        script: Script | str | os.PathLike[str] | None = None,
        *,
        log_path: str | os.PathLike[str] | None = None,
        port: int = 0,
        max_body: int = MAX_BODY,
        on_request: Callable[[LogEntry], None] | None = None,
    ) -> None:
        if script is not None and not isinstance(script, Script):
            script = load_script(script)
        self.script: Script = script or Script()
        self.player = Player(self.script)
        self.port = port
        self.max_body = max_body
        self.on_request = on_request
        try:
            self.log = RequestLog(log_path)
        except OSError as exc:
            raise CommNodeError(
                f"{log_path}: cannot open the request log: {exc.strerror or exc}"
            ) from None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._arrivals = itertools.count(1)  # next() is atomic: handler threads share it
        self._held: dict[str, int] = {}
        self._held_lock = threading.Lock()

    # ---- life -----------------------------------------------------------------------------
    def start(self) -> str:
        if self._server is not None:
            return self.base_url
        try:
            self._server = _Server(self, self.port)
        except OSError as exc:
            raise CommNodeError(
                f"cannot listen on {HOST}:{self.port}: {exc.strerror or exc}"
            ) from None
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="scripted-model",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise CommNodeError("the scripted model is not running")
        return f"http://{HOST}:{self._server.server_address[1]}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # slow streams in progress give up at their next pause
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
        self.log.close()

    def __enter__(self) -> ScriptedModel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self) -> list[LogEntry]:
        """Every request answered so far, oldest first."""
        return self.log.entries()

    def wait_requests(self, count: int, timeout: float = 10.0) -> list[LogEntry]:
        """The log once `count` requests have been answered (or when `timeout` runs out):
        a request is logged after its response ended, so this is how a caller syncs."""
        return self.log.wait(count, timeout)

    def log_entry(self, entry: LogEntry) -> None:
        self.log.add(entry)
        if self.on_request is not None:
            try:
                self.on_request(entry)
            except Exception:  # a printer that fails must not break serving
                pass

    # ---- one request ----------------------------------------------------------------------
    def handle(self, h: _Handler) -> None:
        started = time.monotonic()
        entry = LogEntry(time=time.time(), method=h.command, path=h.path)
        entry.seq = next(self._arrivals)
        entry.request_id = sse.new_request_id()
        try:
            self._route(h, entry)
        except _HttpError as exc:
            try:
                h.reply_error(
                    entry, exc.status, _error_type(exc.status), exc.message, close=exc.close
                )
            except _ClientGone:
                h.close_connection = True
        except _ClientGone:
            entry.error = entry.error or "the client went away"
            h.close_connection = True
        except _Stopped:
            entry.error = "the server stopped"
            h.close_connection = True
        except Exception as exc:  # a bug here must cost one request, not the server
            entry.error = f"internal error: {type(exc).__name__}: {exc}"
            h.close_connection = True
            if entry.status == 0:
                try:
                    h.reply_error(
                        entry, 500, "api_error", f"scripted model: {entry.error}", close=True
                    )
                except _ClientGone:
                    pass
        entry.seconds = round(time.monotonic() - started, 3)
        self.log_entry(entry)

    def _route(self, h: _Handler, entry: LogEntry) -> None:
        path = urlsplit(h.path).path.rstrip("/")
        if h.command != "POST" or path not in (MESSAGES, COUNT_TOKENS):
            # Unread bodies would be parsed as the next request: close the connection.
            raise _HttpError(
                404,
                f"Not found: {h.command} {urlsplit(h.path).path}",
                close=h.headers.get("content-length") not in (None, "0"),
            )
        body = self._read_body(h)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HttpError(400, "messages: a non-empty list is required")
        if not all(isinstance(m, dict) for m in messages):
            raise _HttpError(400, "messages: every message must be an object")
        entry.model = body.get("model") if isinstance(body.get("model"), str) else None
        if path == COUNT_TOKENS:
            entry.kind = "count_tokens"
            h.reply_json(entry, 200, {"input_tokens": sse.input_tokens(body)})
            return
        turn = read_turn(body)
        entry.kind = turn.kind
        entry.side = turn.kind == "side"
        entry.session_id = turn.session_id
        entry.subagent = turn.subagent
        entry.stream = body.get("stream") is True
        entry.prompt = preview(turn.text if turn.kind in ("side", "notification") else turn.prompt)
        entry.earlier = [p for t in turn.earlier[-EARLIER_KEPT:] if (p := preview(t))]
        entry.reminders = [p for t in reminders(body) if (p := preview(t))]
        if turn.kind == "tool_result":
            entry.tool = ",".join(sorted({r.tool or "?" for r in turn.results}))
            entry.tool_result = preview(turn.text)
        reply = self.player.answer(turn)
        entry.rule = reply.rule
        if reply.error is not None:
            err = reply.error
            headers = {}
            if err.retry_after is not None:
                headers["retry-after"] = f"{err.retry_after:g}"
            self._pause(time.monotonic() + (reply.stream.wait if reply.stream else 0.0))
            h.reply_error(entry, err.status, err.error_type, err.message, headers=headers)
            return
        self._answer(h, entry, body, reply)

    def _read_body(self, h: _Handler) -> dict:
        if h.headers.get("transfer-encoding"):
            raise _HttpError(411, "send the body with a content-length", close=True)
        raw_length = h.headers.get("content-length")
        try:
            length = int(raw_length) if raw_length is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            raise _HttpError(411, "a content-length is required", close=True)
        if length > self.max_body:
            # Read it away unkept, so the client gets the answer rather than a reset.
            self._discard(h, length)
            raise _HttpError(
                413, f"the request is {length} bytes; the limit is {self.max_body}", close=True
            )
        try:
            raw = h.rfile.read(length)
        except OSError as exc:
            raise _ClientGone(str(exc)) from None
        if len(raw) < length:
            raise _ClientGone("the client went away while sending the body")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise _HttpError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "the body must be a JSON object")
        return body

    def _discard(self, h: _Handler, length: int) -> None:
        if length > MAX_DISCARD:
            return
        try:
            while length > 0:
                chunk = h.rfile.read(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            return

    def _answer(self, h: _Handler, entry: LogEntry, body: dict, reply: Reply) -> None:
        model = entry.model or "claude-scripted"
        message_id = sse.new_message_id()
        use = sse.usage(body, reply)
        entry.message_id = message_id
        entry.usage = use
        entry.stop_reason = reply.stop_reason
        entry.tool_calls = reply.tool_calls
        entry.text = preview("".join(c.text or "" for c in reply.content)) or None
        stream = reply.stream
        chunks = None
        if stream is not None:
            chunks = stream.chunks or (math.ceil(stream.seconds * 4) if stream.seconds else None)
        events = sse.events(message_id, model, reply, use, chunks)
        deltas = sum(1 for e in events if e.delta)
        interval = 0.0
        if stream is not None and stream.seconds:
            interval = stream.seconds / max(1, deltas)
        elif stream is not None and stream.delay:
            interval = stream.delay
        wait = stream.wait if stream is not None else 0.0
        t0 = time.monotonic()
        gate = stream.gate if stream is not None else None
        gate_timeout = stream.gate_timeout if stream is not None else 0.0
        if not entry.stream:
            self._pause(t0 + wait)
            if gate is not None:
                self._hold(gate, gate_timeout)
                t0, wait = time.monotonic(), 0.0
            self._pause(t0 + wait + interval * deltas)
            h.reply_json(entry, 200, sse.message(message_id, model, reply, use))
            return
        h.start_response(entry, 200, "text/event-stream; charset=utf-8", None)
        k = 0
        for event in events:
            if event.delta:
                k += 1
                if k == 1 and gate is not None:
                    self._pause(t0 + wait, h)
                    self._hold(gate, gate_timeout, h)
                    t0, wait = time.monotonic() - interval, 0.0
                self._pause(t0 + wait + interval * k, h)
            h.write_chunk(event.encode())
        h.write(b"0\r\n\r\n")
        entry.completed = True

    def _hold(self, gate: str, timeout: float, h: _Handler | None = None) -> None:
        """Wait until the file `gate` exists (a test's signal), at most `timeout` seconds, with
        pings every 5 s of silence; past the timeout the reply goes on, so a test that forgot
        its gate fails on what follows rather than hanging."""
        path = Path(gate)
        until = time.monotonic() + timeout
        pinged = time.monotonic()
        with self._held_lock:
            self._held[gate] = self._held.get(gate, 0) + 1
        try:
            while not path.exists() and time.monotonic() < until:
                if self._stopping.wait(GATE_POLL):
                    raise _Stopped()
                if h is not None and time.monotonic() - pinged >= PING_EVERY:
                    h.write_chunk(sse.PING.encode())
                    pinged = time.monotonic()
        finally:
            with self._held_lock:
                self._held[gate] -= 1

    def holding(self, gate: str | os.PathLike[str]) -> int:
        """How many replies wait at `gate` right now (requests are logged only once answered,
        so this is how a test knows a turn reached its gate)."""
        with self._held_lock:
            return self._held.get(str(gate), 0)

    def _pause(self, until: float, h: _Handler | None = None) -> None:
        """Wait until `until` (monotonic); pings keep a long stream alive; a stop ends it."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            if self._stopping.wait(min(left, PING_EVERY)):
                raise _Stopped()
            if h is not None and until - time.monotonic() > 0:
                h.write_chunk(sse.PING.encode())
