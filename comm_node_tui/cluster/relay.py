"""The engine's side of a cluster: mail to and from the other machines, the coordination
mirror, and this engine's agents published for the others.

Mail out: the router delivers locally as ever and hands a copy for a domain owned by another
machine to `send`, which publishes it on that domain's subject with `Nats-Msg-Id` =
"<message id>:<recipient>" and returns at once with the pending ack; the router publishes a
batch, then waits for the batch's acks together (engine/router.py) and only then archives
each message. No ack (server down) is an OSError: the message stays in the outbox (its
decision is in the ledger) and the router's rescan retries it; a publish whose ack was lost
and is sent again is dropped by the stream's de-duplication window, and any copy past that
by the receiver.

Mail in: one durable pull consumer per local domain (named after the domain, so a domain
moved to another machine takes its unread mail along). Each message is written atomically
into the inbox as `<id>.md`, then acked: a crash between the two redelivers it, and a copy
whose id is already in the inbox or inbox/read/ is acked and dropped. Exactly once per
recipient.

The rest of the cluster's view, for the rooms: each engine puts its agents (status, pane,
health) under its node's key in the state bucket and watches the other nodes' keys
(`remote_nodes`, swapped whole, and written for this machine's viewers: cluster/view.py); it
publishes its agents' events from its log to the events stream, also what it logged while cut
off or stopped, and shows the other engines' events to its subscribers (the room) and writes
them into a log of their own (cluster/remote_log.py), never into its own log
(cluster/events.py); and it answers the operator's requests for its
agents on its ops subject (cluster/requests.py), through `on_request`, which a layer above
sets (operator/remote.py).

Threads: everything NATS runs on the client's loop thread (client.py); the router waits for
acks at most [cluster] timeout_s, and not at all while the server is known to be down. A
request is carried out in a worker thread (tmux blocks). Events go through the engine's
emit, which any thread may call.
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
from collections.abc import Callable, Mapping
from typing import Any

from comm_node_tui.cluster.client import RETRY_S, ClusterClient
from comm_node_tui.cluster.events import EventPublisher
from comm_node_tui.cluster.names import Names, token
from comm_node_tui.cluster.remote_log import RemoteLog
from comm_node_tui.cluster.requests import READ_ONLY, BadRequest, RequestMemory, parse
from comm_node_tui.cluster.state import published_state
from comm_node_tui.cluster.view import ViewWriter, owners_of
from comm_node_tui.protocol import guarded
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir
from comm_node_tui.workspace.model import Workspace

DUPLICATE_WINDOW_S = 3600.0  # the stream drops a re-sent message id for this long
EVENTS_RETRY_S = 10.0  # the events stream refused (no room on the server): asked again
FETCH_BATCH = 64
FETCH_WAIT_S = 1.0  # a fetch waits on the server this long: idle consumers do not spin
ID_HEADER = "Comm-Node-Id"
TO_HEADER = "Comm-Node-To"
MIRRORED = ("locks.json", "tasks.json", "budget-grants.json")  # coordination/coordinator.py
STATE_REFRESH_S = 10.0  # an engine's state is put again this often even unchanged: its age
# then tells the other rooms whether it is still there
# what of a pane the other machines' rooms read (engine/world_views.py PaneView)
PANE_KEYS = (
    "pane", "pid", "dead", "exit_status", "activity", "acted", "acted_kind", "screen_state",
    "dialog", "screen_raw", "screen_at", "screen_since",
)  # fmt: skip


def local_domains(ws: Workspace) -> frozenset[str]:
    """[cluster] local, else the domains whose folder exists on this machine."""
    named = ws.settings.cluster.local
    if named:
        return frozenset(n for n in named if n in ws.domains)
    return frozenset(n for n, d in ws.domains.items() if os.path.isdir(d.path))


class Relay:
    def __init__(
        self,
        ws: Workspace,
        emit: Callable[[Event], None],
        show: Callable[[Event], None] | None = None,
    ) -> None:
        self.ws = ws
        self.emit = emit
        self.show = show  # another machine's event, to this engine's subscribers only
        # ... and into a log of its own for this machine's readers (cluster/remote_log.py)
        self.remote_log = RemoteLog(ws.paths.state)
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
        self._events_ready = False  # the events stream and this engine's consumer of it
        self.events_attempts = 0  # setting up the events stream (a server may lack room)
        # the steps of `_setup` done (local domains' consumers, "coord", "state", "ops"):
        # never twice
        self._begun: set[str] = set()
        self._stop = False
        self._last_state: bytes | None = None
        self._supervisor: Any = None
        self._said_down = False
        self._connections = 0  # connections made so far: the mirror's watch is per connection
        self.attempted = threading.Event()  # set once the first connection attempt is over
        self._state_at = 0.0
        # node -> its last published state ({node, ts, domains, agents, panes, health}), the
        # other nodes only; replaced whole on each change, so any thread reads it unlocked
        self.remote_nodes: dict[str, dict] = {}
        self.view = ViewWriter(ws.paths.state, self.node)  # remote_nodes, for viewers
        # what carries out an operator's request for one of this machine's agents: request
        # -> {"ok", "line", "exit"}; set by the layer above (operator/remote.py)
        self.on_request: Callable[[dict], dict] | None = None
        self.requests = RequestMemory(ws.paths.state)
        self._running: dict[str, asyncio.Future] = {}  # request id -> its answer, under way
        self._handling: set[asyncio.Task] = set()  # requests being answered (kept referenced)
        # this machine's agents' events, from its log to the events stream (cluster/events.py)
        self.events = EventPublisher(
            self.client,
            self.names,
            self.node,
            self.local,
            ws.paths.events,
            ws.paths.state,
            ready=lambda: self._ready and self._events_ready,
            connections=lambda: self._connections,
            emit=emit,
        )

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
        self.events.stopped = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        self.client.close()
        self.remote_log.close()
        self.events.cursor.save()  # where the publisher is: a restart goes on from there

    def _state(self, up: bool, why: str) -> None:
        if up:
            self._connections += 1
            self._said_down = False
            self.events.wake()  # what was logged while cut off goes now, not at its next poll
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
        one consumer per local domain and the coordination mirror; then the events stream,
        apart: a server without room for it leaves mail and state working."""
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
            break
        said = False
        while not self._stop:
            self.events_attempts += 1
            try:
                await self._setup_events()
            except Exception as exc:
                if client.up and not said:
                    said = True  # one event, not one a retry
                    self.emit(
                        Event(
                            "cluster.fault",
                            f"node {self.node}: the events stream could not be set up "
                            f"({type(exc).__name__}: {str(exc)[:200]}); this machine's events "
                            f"do not reach the other rooms (mail and state do), tried again "
                            f"every {EVENTS_RETRY_S:g} s",
                            level="error",
                            data={"node": self.node},
                        )
                    )
                await asyncio.sleep(EVENTS_RETRY_S)
                continue
            self._events_ready = True
            self.client.spawn(self.events.run)  # once ready: it would wait RETRY_S before
            return

    async def _setup(self) -> None:
        """Each step once: a retry after a failure part way does not start a second
        consumer task (or pull subscription) for what the first attempt set up."""
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
        # what is set up already: "mail:<domain>" and the steps below, kept apart (a domain
        # may be named "coord", "state" or "ops")
        for dom in sorted(d for d in self.local if f"mail:{d}" not in self._begun):
            sub = await js.pull_subscribe(
                self.names.mail(dom),
                durable=self.names.consumer(dom),
                stream=self.names.stream,
                config=ConsumerConfig(ack_wait=30, max_deliver=-1),
            )
            self._begun.add(f"mail:{dom}")
            self.client.spawn(functools.partial(self._consume, dom, sub))
        if "coord" not in self._begun:
            kv = await self.client.kv(self.names.coord_bucket)
            watcher = await kv.watchall()
            self._begun.add("coord")
            self.client.spawn(lambda: self._watch(self.names.coord_bucket, watcher, self._mirror))
        if "state" not in self._begun:
            states = await self.client.kv(self.names.state_bucket)
            state_watcher = await states.watchall()
            self._begun.add("state")
            self.client.spawn(
                lambda: self._watch(self.names.state_bucket, state_watcher, self._node_state)
            )
        if "ops" not in self._begun:
            # core subscriptions: nats-py makes them again on every reconnection by itself
            await self.client.nc.subscribe(self.names.ops(self.node), cb=self._request_in)
            self._begun.add("ops")
        self._ready = True

    async def _setup_events(self) -> None:
        """The events stream (bounded by age and size), this engine's durable consumer of
        it, the publisher that follows this machine's log into it (cluster/events.py)."""
        from nats.js.api import (
            AckPolicy,
            ConsumerConfig,
            DeliverPolicy,
            DiscardPolicy,
            StorageType,
            StreamConfig,
        )

        from comm_node_tui.cluster import events

        js = self.client.js
        try:
            await js.stream_info(self.names.events_stream)
        except Exception:
            await js.add_stream(
                StreamConfig(
                    name=self.names.events_stream,
                    subjects=[self.names.all_events],
                    duplicate_window=events.DUPLICATE_WINDOW_S,
                    max_age=events.MAX_AGE_S,
                    max_bytes=events.MAX_BYTES,
                    max_msg_size=events.MAX_MSG_BYTES,
                    discard=DiscardPolicy.OLD,
                    num_replicas=self.settings.replicas,
                    storage=StorageType.FILE,
                )
            )
        sub = await js.pull_subscribe(
            self.names.all_events,
            durable=self.names.events_consumer(self.node),
            stream=self.names.events_stream,
            # made once: from then on (an engine's first start does not replay the day);
            # kept while the engine is stopped, forgotten after a week without it
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.NEW,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30,
                max_deliver=-1,
                inactive_threshold=7 * 24 * 3600.0,
            ),
        )
        own = self.names.events(self.node)
        self.client.spawn(lambda: events.consume(sub, own, self._arrived, lambda: self._stop))

    def _arrived(self, ev: Event, seq: int, redelivered: bool) -> None:
        """Another node's event: into this machine's log of them (its viewers, the web
        room, `comm-node log`), then to this engine's room; a redelivery of one written
        before goes to neither."""
        if self.remote_log.take(ev, seq, redelivered) and self.show is not None:
            self.show(ev)

    # ---- mail out ---------------------------------------------------------------------------
    def send(self, domain: str, ident: str, text: str) -> Any:
        """Publish one copy for a domain on another machine without waiting: the pending ack
        (a Future; `acked` waits for it). OSError at once while the server is down."""
        client = self.client
        if not client.up or not self._ready:
            raise OSError(f"NATS at {client.where} is unreachable; it goes when the server is back")
        subject = self.names.mail(domain)
        headers = {"Nats-Msg-Id": f"{ident}:{domain}", ID_HEADER: ident, TO_HEADER: domain}
        data = text.encode("utf-8")

        async def publish() -> Any:
            return await client.js.publish(subject, data, headers=headers)

        return client.spawn(publish)

    def acked(self, pending: Any, deadline: float) -> None:
        """Wait (until `deadline`, monotonic) for one publish's ack; OSError without it."""
        try:
            pending.result(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            pending.cancel()
            why = str(exc)[:160] or type(exc).__name__
            raise OSError(f"NATS at {self.client.where} did not ack: {why}") from None
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
    def publish_state(
        self,
        statuses: dict[str, dict],
        panes: dict[str, dict] | None = None,
        health: Mapping[str, str] | None = None,
    ) -> None:
        """Put this node's agents (their status files as the engine read them, their panes
        and the engine's judgement of their health) under its key in the state bucket when
        they changed, and every STATE_REFRESH_S anyway; the rooms and `comm-node cluster
        status` on any machine read every node's. Never waits: the engine's loop calls it
        every tick."""
        if not self.client.up or not self._ready:
            return
        names = sorted(self.local)
        panes = panes or {}
        mine = {
            "domains": names,
            "agents": {n: statuses.get(n) for n in names},
            "panes": {
                n: {k: panes[n].get(k) for k in PANE_KEYS}
                for n in names
                if isinstance(panes.get(n), dict)
            },
            "health": {n: str(health[n]) for n in names if health and health.get(n)},
        }
        body = json.dumps(mine, default=str).encode()
        now = time.monotonic()
        if body == self._last_state and now - self._state_at < STATE_REFRESH_S:
            return
        self._last_state, self._state_at = body, now
        doc = json.dumps({"node": self.node, "ts": time.time(), **mine}, default=str).encode()

        async def put() -> None:
            try:
                kv = await self.client.kv(self.names.state_bucket)
                await kv.put(token(self.node), doc)
            except Exception:
                self._last_state = None  # try again next tick

        self.client.spawn(put)

    def _node_state(self, key: str, value: bytes) -> None:
        """Another node's state, as the watch on the state bucket delivers it."""
        try:
            doc = json.loads(value)
        except ValueError:
            return
        if not isinstance(doc, dict) or key == token(self.node):
            return
        doc = published_state(doc)
        if doc is None:
            return
        self.remote_nodes = {**self.remote_nodes, doc["node"]: doc}
        # ... and for this machine's readers that are not the engine (a viewer room,
        # `comm-node status`): they show those rows as the in-process room does
        self.view.write(self.remote_nodes, time.time())

    def owners(self) -> dict[str, str]:
        """domain -> the node that publishes it (the freshest when two do: a domain moved)."""
        return owners_of(self.remote_nodes, self.local)

    # ---- events, shared with the other machines' rooms --------------------------------------
    def share(self, event: Event) -> None:
        """An event was logged (a hub subscriber, in the emitting thread): when it is about
        one of this machine's agents the publisher reads the log now (never waits)."""
        if event.agent in self.local and event.data.get("node") in (None, self.node):
            self.events.wake()

    # ---- the operator's requests for this machine's agents ----------------------------------
    async def _request_in(self, msg: Any) -> None:
        """nats-py hands a subscription's messages over one at a time: each request goes on
        in its own task, so an inject waiting for a prompt does not hold up a kill."""
        task = asyncio.get_running_loop().create_task(self._handle(msg))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _handle(self, msg: Any) -> None:
        try:
            req = parse(msg.data)
        except BadRequest as exc:
            self.emit(Event("cluster.bad_request", str(exc), level="warn"))
            await self._reply(msg, {"ok": False, "line": f"engine {self.node}: {exc}", "exit": 2})
            return
        answer = await self._answer(req)
        await self._reply(msg, answer)

    async def _answer(self, req: dict) -> dict:
        """Carry out one request once: a repeat of an id gets the first answer (waiting for
        it while the first is under way)."""
        rid = req["id"]
        if req["action"] in READ_ONLY:  # nothing done: no memory of it needed
            try:
                return await asyncio.to_thread(self._carry_out, req)
            except Exception as exc:
                return {"ok": False, "line": f"{type(exc).__name__}: {str(exc)[:200]}", "exit": 1}
        running = self._running.get(rid)
        if running is not None:
            return await asyncio.shield(running)
        known, answer = self.requests.seen(rid)
        if answer is not None:
            return answer
        if known:  # begun, and this engine stopped before it answered
            return {
                "ok": False,
                "line": f"engine {self.node} stopped while doing request {rid}: not done "
                f"again (look at {req['agent']} first)",
                "exit": 1,
            }
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._running[rid] = fut
        try:
            answer = await asyncio.to_thread(self._carry_out, req)
        except Exception as exc:  # never leave a repeat of this id waiting for ever
            answer = {"ok": False, "line": f"{type(exc).__name__}: {str(exc)[:200]}", "exit": 1}
        finally:
            self._running.pop(rid, None)
        fut.set_result(answer)
        return answer

    def _carry_out(self, req: dict) -> dict:
        rid, action, agent = req["id"], req["action"], req["agent"]
        if agent not in self.local and action not in ("pause", "resume"):
            return {"ok": False, "line": f"{agent} is not on {self.node}", "exit": 1}
        if self.on_request is None:
            return {"ok": False, "line": f"engine {self.node} takes no requests yet", "exit": 1}
        if action in READ_ONLY:
            return self.on_request(req)
        self.requests.begin(rid, {"action": action, "agent": agent, "from": req["from"]})
        try:
            answer = self.on_request(req)
        except Exception as exc:  # the service answers in one line; this is the last net
            answer = {"ok": False, "line": f"{type(exc).__name__}: {str(exc)[:200]}", "exit": 1}
        self.requests.finish(rid, answer)
        self.emit(
            Event(
                "operator.remote",
                f"{action} {agent}, asked from {req['from'][:32]}: {answer.get('line', '')}"[:300],
                agent=agent if agent in self.local else None,
                level="info" if answer.get("ok") else "warn",
                data={"id": rid, "action": action, "from": req["from"], "ok": answer.get("ok")},
            )
        )
        return answer

    async def _reply(self, msg: Any, answer: dict) -> None:
        if not msg.reply:
            return
        with contextlib.suppress(Exception):
            # UTF-8 as it is (a screen's box drawing is 3 bytes, not a 6-byte escape)
            await msg.respond(json.dumps(answer, ensure_ascii=False).encode())

    # ---- watching a bucket -------------------------------------------------------------------
    async def _watch(self, bucket: str, watcher: Any, take: Callable[[str, bytes], None]) -> None:
        """Every write to a bucket, by any machine, handed to `take(key, value)`. The watch is
        an ephemeral consumer, lost when the server restarts: after every reconnection it is
        made anew, and replays the current values first."""
        seen = self._connections
        while not self._stop:
            if self._connections != seen:
                seen = self._connections
                with contextlib.suppress(Exception):
                    await watcher.stop()
                try:
                    kv = await self.client.kv(bucket)
                    watcher = await kv.watchall()
                except Exception:
                    seen = -1  # try again on the next pass
                    await asyncio.sleep(RETRY_S)
                    continue
            try:
                entry = await watcher.updates(timeout=5)
            except Exception:
                continue  # nothing new (a timeout), or the connection is away
            if entry is None or not entry.value:
                continue
            take(entry.key, entry.value)

    # ---- the coordination mirror ------------------------------------------------------------
    def _mirror(self, key: str, value: bytes) -> None:
        """A shared coordination file, into the local copy the room and the task view read
        (a write made here is mirrored once more: harmless)."""
        if key not in MIRRORED:
            return
        try:
            data = json.loads(value)
        except ValueError:
            return
        with contextlib.suppress(OSError):
            # the bucket's key is the file's name; a guarded one's file is in guarded/
            guarded.write(
                self.ws.paths.state,
                key,
                json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n",
            )
