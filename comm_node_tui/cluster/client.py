"""A synchronous face on nats-py: the router and the coordination code are synchronous.

nats-py is asyncio; its loop runs in one daemon thread per client and callers wait for
results with a timeout. When the server is unreachable every call fails at once with
ClusterUnavailable (one line, no secret in it) instead of blocking the caller, and a new
connection is tried at most every RETRY_S: no busy loop, and the engine's own loop never
waits on a dead server. nats-py reconnects by itself once connected; `up` follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from comm_node_tui.errors import CommNodeError
from comm_node_tui.workspace.settings import ClusterSettings, mask_nats

T = TypeVar("T")
RETRY_S = 2.0


class ClusterUnavailable(CommNodeError):
    """The NATS server cannot be reached (or timed out): nothing was decided there."""


class MissingExtra(CommNodeError):
    pass


def load_nats(websocket: bool = False) -> Any:
    """nats-py. It imports aiohttp at its own import, for its websocket transport only
    (ws://, wss://): ~0.16 s of CPU (aiohttp builds SSL contexts as it loads) on every agent
    CLI call that takes a cluster lock or claims a task, and at every engine start. Without
    a websocket URL, nats is imported with aiohttp hidden; a websocket URL later in the same
    process gets aiohttp then."""
    import sys

    hide = not websocket and "nats" not in sys.modules and "aiohttp" not in sys.modules
    if hide:
        sys.modules["aiohttp"] = None  # type: ignore[assignment]  # `import aiohttp` fails
    try:
        import nats
    except ImportError:
        raise MissingExtra(
            "[cluster] needs nats-py: pip install 'comm-node-tui[cluster]'"
        ) from None
    finally:
        if hide and sys.modules.get("aiohttp", False) is None:
            sys.modules.pop("aiohttp")
    if websocket:
        transport: Any = sys.modules["nats.aio.transport"]
        if transport.aiohttp is None:  # imported hidden earlier in this process
            with contextlib.suppress(ImportError):  # nats-py says what is missing
                import aiohttp

                transport.aiohttp = aiohttp
    return nats


def uses_websocket(servers: list[str]) -> bool:
    return any(u.strip().startswith(("ws://", "wss://")) for u in servers)


def tls_context(settings: ClusterSettings) -> Any:
    if not (settings.tls_ca or settings.tls_cert):
        return None
    import ssl

    ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    if settings.tls_cert:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    return ctx


def connect_options(settings: ClusterSettings, name: str) -> dict[str, Any]:
    """nats.connect's keywords for these settings (credentials included: never log this)."""
    opts: dict[str, Any] = {
        "servers": [u.strip() for u in settings.nats.split(",") if u.strip()],
        "name": name,
        "connect_timeout": settings.timeout_s,
    }
    if settings.token:
        opts["token"] = settings.token
    if settings.user:
        opts["user"], opts["password"] = settings.user, settings.password
    if settings.nkey_seed_file:
        opts["nkeys_seed"] = settings.nkey_seed_file
    tls = tls_context(settings)
    if tls is not None:
        opts["tls"] = tls
    return opts


class ClusterClient:
    """One connection, its loop in a daemon thread. `persistent` (the engine): reconnect for
    ever; otherwise (an agent's CLI call) fail fast."""

    def __init__(
        self,
        settings: ClusterSettings,
        name: str,
        *,
        persistent: bool = False,
        on_state: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.persistent = persistent
        self.on_state = on_state  # (up, why): called from the client's thread
        self.where = mask_nats(settings.nats)
        # nats-py imported here, before any caller's `from nats.js... import`, so that it is
        # imported the lean way (load_nats); a missing extra is said at the connect
        with contextlib.suppress(MissingExtra):
            load_nats(websocket=uses_websocket(settings.nats.split(",")))
        self.nc: Any = None
        self.js: Any = None
        self.up = False
        self._next_try = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=name)
        self._thread.start()
        self._kv: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ---- running coroutines ---------------------------------------------------------------
    def run(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run `make()` on the client's loop and wait for it (ClusterUnavailable on timeout)."""
        limit = self.settings.timeout_s if timeout is None else timeout
        fut = asyncio.run_coroutine_threadsafe(_awaited(make), self._loop)
        try:
            return fut.result(limit)
        except TimeoutError:
            fut.cancel()
            raise ClusterUnavailable(
                f"cluster: no answer from NATS at {self.where} within {limit:g} s"
            ) from None

    def spawn(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Start a background task on the client's loop (the relay's consumers)."""
        return asyncio.run_coroutine_threadsafe(_awaited(make), self._loop)

    # ---- the connection -------------------------------------------------------------------
    def ensure(self) -> None:
        """Connected, or ClusterUnavailable at once (a new attempt at most every RETRY_S)."""
        with self._lock:
            if self.nc is not None:
                if self.up:
                    return
                raise ClusterUnavailable(f"cluster: NATS at {self.where} is unreachable")
            now = time.monotonic()
            if now < self._next_try:
                raise ClusterUnavailable(f"cluster: NATS at {self.where} is unreachable")
            self._next_try = now + RETRY_S
            self.run(self._connect, self.settings.timeout_s * 2 + 1)

    async def _connect(self) -> None:
        opts = connect_options(self.settings, self.name)
        nats = load_nats(websocket=uses_websocket(opts["servers"]))
        me = self

        async def disconnected() -> None:
            if me.up:
                me.up = False
                me._state(False, f"lost the connection to NATS at {me.where}")

        async def reconnected() -> None:
            me.up = True
            me._state(True, f"reconnected to NATS at {me.where}")

        tried: list[Exception] = []  # the first connection's errors, to say the telling one

        async def error(exc: Exception) -> None:
            # disconnected/reconnected report what matters; never the options
            if me.nc is None:
                tried.append(exc)

        # The first connection tries each listed server twice, 0.5 s apart, then fails.
        # nats-py's first connect never gives up on a refused server when
        # max_reconnect_attempts is 0 or -1 (it tries again every reconnect_time_wait): a
        # dead server held each CLI call and the engine's start for the whole timeout
        # (11 s), and no cluster.down was said. allow_reconnect here lets a server that
        # refuses us after the TCP connect (auth, TLS) pass the turn to the next one.
        opts.update(
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
            allow_reconnect=True,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
        )
        try:
            nc = await nats.connect(**opts)
        except Exception as exc:
            # "no servers" says less than "refused", and a server's own word (Authorization
            # Violation) more than the reset of the socket it closed after saying it
            told = [e for e in tried if not isinstance(e, OSError)]
            why = _why(told[-1] if told else tried[-1] if tried else exc)
            raise ClusterUnavailable(
                f"cluster: cannot connect to NATS at {self.where}: {why}"
            ) from None
        # Once connected, the engine's connection follows the server for ever; a CLI call's
        # fails at once (nats-py reads these options when the connection drops).
        nc.options["allow_reconnect"] = self.persistent
        nc.options["max_reconnect_attempts"] = -1 if self.persistent else 0
        self.nc = nc
        self.js = self.nc.jetstream(timeout=self.settings.timeout_s)
        self.up = True
        self._state(True, f"connected to NATS at {self.where}")

    def _state(self, up: bool, why: str) -> None:
        if self.on_state is not None:
            self.on_state(up, why)

    def close(self) -> None:
        """Close the connection, end every task on the loop (quietly), stop the thread."""
        if not self._thread.is_alive():
            return
        nc, self.nc, self.up = self.nc, None, False

        async def shutdown() -> None:
            if nc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 2.0)
            me = asyncio.current_task()
            tasks = {t for t in asyncio.all_tasks() if t is not me}
            # Cancelled again until they end: once the connection is closed, nats-py turns a
            # cancel in a fetch into ConnectionClosedError, and the relay's consumer took it
            # for a lost server and waited out its 2 s retry pause: every engine's stop.
            while tasks:
                for t in tasks:
                    t.cancel()
                _done, tasks = await asyncio.wait(tasks, timeout=0.05)

        with contextlib.suppress(Exception):
            self.run(shutdown, 5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2.0)

    # ---- JetStream --------------------------------------------------------------------------
    async def kv(self, bucket: str) -> Any:
        """The bucket, created on first use (history 1: only the current value matters)."""
        kv = self._kv.get(bucket)
        if kv is None:
            from nats.js.api import KeyValueConfig
            from nats.js.errors import BucketNotFoundError

            try:
                kv = await self.js.key_value(bucket)
            except BucketNotFoundError:
                kv = await self.js.create_key_value(
                    KeyValueConfig(bucket=bucket, history=1, replicas=self.settings.replicas)
                )
            self._kv[bucket] = kv
        return kv

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """ensure() then run(); a failure of the server becomes ClusterUnavailable."""
        self.ensure()
        try:
            return self.run(make)
        except CommNodeError:
            raise
        except Exception as exc:
            from nats.js.errors import KeyWrongLastSequenceError

            if isinstance(exc, KeyWrongLastSequenceError):
                raise
            raise ClusterUnavailable(f"cluster: NATS at {self.where}: {_why(exc)}") from None


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}" + (f": {text[0][:160]}" if text and text[0] else "")
