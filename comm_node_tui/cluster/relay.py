"""The engine's side of a cluster: mail to and from the other machines, the coordination
mirror, and this engine's agents published for the others.

Mail out: the router delivers locally as ever and hands a copy for a domain owned by another
machine to `deliver`, which publishes it on that domain's subject with `Nats-Msg-Id` =
"<message id>:<recipient>" and waits for the stream's ack. No ack (server down) raises
OSError: the message stays in the outbox (its decision is in the ledger) and the router's
rescan retries it; a publish whose ack was lost and is sent again is dropped by the stream's
de-duplication window, and any copy past that by the receiver.

Mail in: one durable pull consumer per local domain (named after the domain, so a domain
moved to another machine takes its unread mail along). Each message is written atomically
into the inbox as `<id>.md`, then acked: a crash between the two redelivers it, and a copy
whose id is already in the inbox or inbox/read/ is acked and dropped. Exactly once per
recipient.

Threads: everything NATS runs on the client's loop thread (client.py); `deliver` is called
from the engine's loop and waits at most [cluster] timeout_s, and not at all while the
server is known to be down. Events go through the engine's emit, which any thread may call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from comm_node_tui.cluster.client import RETRY_S, ClusterClient
from comm_node_tui.cluster.names import Names, token
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir
from comm_node_tui.workspace.model import Workspace

DUPLICATE_WINDOW_S = 3600.0  # the stream drops a re-sent message id for this long
FETCH_BATCH = 64
FETCH_WAIT_S = 1.0  # a fetch waits on the server this long: idle consumers do not spin
ID_HEADER = "Comm-Node-Id"
TO_HEADER = "Comm-Node-To"
MIRRORED = ("locks.json", "tasks.json", "budget-grants.json")  # coordination/coordinator.py


def local_domains(ws: Workspace) -> frozenset[str]:
    """[cluster] local, else the domains whose folder exists on this machine."""
    named = ws.settings.cluster.local
    if named:
        return frozenset(n for n in named if n in ws.domains)
    return frozenset(n for n, d in ws.domains.items() if os.path.isdir(d.path))


class Relay:
    def __init__(self, ws: Workspace, emit: Callable[[Event], None]) -> None:
        self.ws = ws
        self.emit = emit
        self.settings = ws.settings.cluster
        self.node = self.settings.node or socket.gethostname()
        self.names = Names(ws.project)
        self.local = local_domains(ws)
        self.remote_domains = frozenset(ws.domains) - self.local
        self.client = ClusterClient(
            self.settings, f"comm-node-engine-{self.node}", persistent=True, on_state=self._state
        )
        self.received = 0
        self.sent = 0
        self._ready = False  # stream, consumers and watcher set up on this connection
        self._stop = False
        self._last_state: bytes | None = None
        self._supervisor: Any = None
        self._said_down = False
        self._connections = 0  # connections made so far: the mirror's watch is per connection
        self.attempted = threading.Event()  # set once the first connection attempt is over

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; until the server answers the engine works locally."""
        self.emit(
            Event(
                "cluster.starting",
                f"node {self.node}: local {', '.join(sorted(self.local)) or 'none'}; "
                f"remote {', '.join(sorted(self.remote_domains)) or 'none'} "
                f"via {self.client.where}",
                data={"node": self.node, "local": sorted(self.local)},
            )
        )
        self._supervisor = self.client.spawn(self._supervise)
        # A moment for the first attempt, so what waited in the outboxes goes in the engine's
        # first scan; a dead server costs this once (the attempt's own timeout), not per scan.
        self.attempted.wait(self.settings.timeout_s * 2 + 1)

    def stop(self) -> None:
        self._stop = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        self.client.close()

    def _state(self, up: bool, why: str) -> None:
        if up:
            self._connections += 1
            self._said_down = False
            self.emit(Event("cluster.up", f"node {self.node}: {why}", data={"node": self.node}))
        elif not self._said_down:
            self._said_down = True
            self.emit(
                Event(
                    "cluster.down",
                    f"node {self.node}: {why}; mail for other machines waits in the "
                    "outboxes, local work goes on",
                    level="error",
                    data={"node": self.node},
                )
            )

    async def _supervise(self) -> None:
        """Connect (again every RETRY_S while the server is away), then set up the stream,
        one consumer per local domain and the coordination mirror."""
        client = self.client
        while not self._stop:
            if client.nc is None:
                try:
                    await client._connect()
                except Exception as exc:
                    self._state(False, str(exc).removeprefix("cluster: "))
                    self.attempted.set()
                    await asyncio.sleep(RETRY_S)
                    continue
            try:
                await self._setup()
            except Exception as exc:
                if client.up:
                    self.emit(
                        Event(
                            "cluster.fault",
                            f"node {self.node}: setting up JetStream failed: "
                            f"{type(exc).__name__}: {str(exc)[:200]}",
                            level="error",
                        )
                    )
                self.attempted.set()
                await asyncio.sleep(RETRY_S)
                continue
            self.attempted.set()
            return

    async def _setup(self) -> None:
        from nats.js.api import ConsumerConfig, StorageType, StreamConfig

        js = self.client.js
        config = StreamConfig(
            name=self.names.stream,
            subjects=[self.names.subjects],
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=self.settings.replicas,
            storage=StorageType.FILE,
        )
        try:
            await js.stream_info(self.names.stream)
        except Exception:
            await js.add_stream(config)
        for dom in sorted(self.local):
            sub = await js.pull_subscribe(
                self.names.mail(dom),
                durable=self.names.consumer(dom),
                stream=self.names.stream,
                config=ConsumerConfig(ack_wait=30, max_deliver=-1),
            )
            self.client.spawn(functools.partial(self._consume, dom, sub))
        kv = await self.client.kv(self.names.coord_bucket)
        watcher = await kv.watchall()
        self.client.spawn(lambda: self._mirror(watcher))
        self._ready = True

    # ---- mail out ---------------------------------------------------------------------------
    def deliver(self, domain: str, ident: str, text: str) -> None:
        """Publish one copy for a domain on another machine; OSError when not acked."""
        client = self.client
        if not client.up or not self._ready:
            raise OSError(f"NATS at {client.where} is unreachable; it goes when the server is back")
        subject = self.names.mail(domain)
        headers = {"Nats-Msg-Id": f"{ident}:{domain}", ID_HEADER: ident, TO_HEADER: domain}
        data = text.encode("utf-8")

        async def publish() -> Any:
            return await client.js.publish(subject, data, headers=headers)

        try:
            client.run(publish)
        except Exception as exc:
            raise OSError(f"NATS at {client.where} did not ack: {str(exc)[:160]}") from None
        self.sent += 1

    # ---- mail in ----------------------------------------------------------------------------
    async def _consume(self, domain: str, sub: Any) -> None:
        import nats.errors

        while not self._stop:
            try:
                msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_WAIT_S)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception:
                # disconnected: nats-py reconnects by itself, and the durable consumer keeps
                # our place; wait instead of spinning on the error
                await asyncio.sleep(RETRY_S)
                continue
            for msg in msgs:
                self._receive(domain, msg)
                with contextlib.suppress(Exception):
                    await msg.ack()  # lost: redelivered, then dropped as a duplicate

    def _receive(self, domain: str, msg: Any) -> None:
        headers = msg.headers or {}
        ident = headers.get(ID_HEADER, "")
        dom = self.ws.domains.get(domain)
        if dom is None or not ident or "/" in ident or ident.startswith("."):
            return  # not ours to write (a bad header is acked and dropped)
        inbox, read_dir = dom.paths.inbox, dom.paths.inbox_read
        target = os.path.join(inbox, f"{ident}.md")
        if os.path.exists(target) or os.path.exists(os.path.join(read_dir, f"{ident}.md")):
            return  # delivered before: a redelivery after a crash or a lost ack
        try:
            atomic_write(target, msg.data.decode("utf-8", "replace"))
        except FileNotFoundError:
            ensure_dir(inbox)
            atomic_write(target, msg.data.decode("utf-8", "replace"))
        self.received += 1
        self.emit(
            Event(
                "message.arrived",
                f"{domain}: a message from another machine ({ident})",
                agent=domain,
                data={"id": ident, "to": domain, "node": self.node},
            )
        )

    # ---- this engine's agents, for the other machines ---------------------------------------
    def publish_state(self, statuses: dict[str, dict]) -> None:
        """Put this node's agents (their status files as the engine read them) under its key
        in the state bucket when they changed; `comm-node cluster status` on any machine
        reads every node's. Never waits: the engine's loop calls it every tick."""
        if not self.client.up or not self._ready:
            return
        mine = {n: statuses.get(n) for n in sorted(self.local)}
        body = json.dumps({"domains": sorted(self.local), "agents": mine}, default=str).encode()
        if body == self._last_state:
            return
        self._last_state = body
        doc = json.dumps(
            {"node": self.node, "ts": time.time(), **json.loads(body)}, default=str
        ).encode()

        async def put() -> None:
            try:
                kv = await self.client.kv(self.names.state_bucket)
                await kv.put(token(self.node), doc)
            except Exception:
                self._last_state = None  # try again next tick

        self.client.spawn(put)

    # ---- the coordination mirror ------------------------------------------------------------
    async def _mirror(self, watcher: Any) -> None:
        """Every write to the shared coordination files, by any machine, into the local copy
        the room and the task view read (a write made here is mirrored once more: harmless).
        The watch is an ephemeral consumer, lost when the server restarts: after every
        reconnection it is made anew, and replays the current values first."""
        seen = self._connections
        while not self._stop:
            if self._connections != seen:
                seen = self._connections
                with contextlib.suppress(Exception):
                    await watcher.stop()
                try:
                    kv = await self.client.kv(self.names.coord_bucket)
                    watcher = await kv.watchall()
                except Exception:
                    seen = -1  # try again on the next pass
                    await asyncio.sleep(RETRY_S)
                    continue
            try:
                entry = await watcher.updates(timeout=5)
            except Exception:
                continue  # nothing new (a timeout), or the connection is away
            if entry is None or entry.key not in MIRRORED or not entry.value:
                continue
            try:
                data = json.loads(entry.value)
            except ValueError:
                continue
            with contextlib.suppress(OSError):
                atomic_write(
                    os.path.join(self.ws.paths.state, entry.key),
                    json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n",
                )
