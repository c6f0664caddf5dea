"""([cluster]) Events about this machine's agents, kept for the other machines' rooms across
cut-offs and restarts (docs/cluster.md, "What goes through NATS").

The owner's event log is the record. A publisher follows it from a cursor (a position in the
log: the file's inode and an offset, in `.comm-node/state/cluster-events.json`) and publishes
each event about one of this machine's agents to the stream `CN_<project>_EVENTS`, on
`cn.<project>.events.<node>`, with `Nats-Msg-Id` = the node and a hash of the log line. The
cursor moves only past lines the stream acked: while the link is down nothing moves, and
when it returns (or the engine starts again) what was logged meanwhile goes out, oldest
first. A line sent twice (an ack lost, a crash between the ack and the cursor's write) has
the same id: the stream drops it within its de-duplication window, and on every (re)connection
the publisher first asks the stream for the last id it holds from this node and skips the log
up to that line, so even a restart long after the window doubles nothing.

Following the log rather than the engine's emit makes one path for live and late events: the
engine's emit only wakes the publisher (no wait for the next poll); events other processes
append about this machine's agents (hooks, the agents' CLI) go too, as this machine's viewer
rooms show them.

Readers: each engine has a durable consumer of its own (`events-<node>`), so an engine that
was stopped gets what it missed, within the stream's limits, and nothing it acked again; it
shows another node's events to its subscribers (the room), marked with the node, and writes
them into a log of their own for this machine's other readers (cluster/remote_log.py), never
into its own log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from comm_node_tui.cluster.client import RETRY_S
from comm_node_tui.cluster.names import Names, token
from comm_node_tui.protocol import jsonfast
from comm_node_tui.protocol.events import MAX_LINE, Event, log_files
from comm_node_tui.protocol.fileio import atomic_write

# The stream's limits: a day of events, at most 256 MiB; the oldest go first. A reader engine
# stopped for longer gets the newest day (the owner's log keeps everything).
MAX_AGE_S = 24 * 3600.0
MAX_BYTES = 256 * 1024 * 1024
MAX_MSG_BYTES = MAX_LINE + 1024  # one log line (at most 64 KiB) and the node's name
# A re-sent line is dropped by id this long; past it the last-id check (`_align`) holds. The
# server keeps every id of the window in memory: minutes, not the mail stream's hour.
DUPLICATE_WINDOW_S = 600.0
BATCH = 256  # lines read, and events published with their acks awaited together, per pass
READ_BYTES = 4 * 1024 * 1024
IDLE_POLL_S = 1.0  # for lines other processes append (the engine's own emit wakes at once)
CURSOR_FILE = "cluster-events.json"
CURSOR_EVERY_S = 1.0  # the cursor's file is rewritten at most this often (and at the stop)
FETCH_BATCH = 256
FETCH_WAIT_S = 1.0

Pos = tuple[int, int]  # (inode of a log file, byte offset in it)


def event_id(node: str, line: bytes) -> str:
    """The de-duplication id of one log line: the same line always has the same id."""
    return f"{token(node)}:{hashlib.sha256(line).hexdigest()[:32]}"


def shareable(line: bytes, local: frozenset[str], node: str) -> dict | None:
    """The event of one log line when it is about one of this machine's agents and did not
    come from another machine; else None."""
    if b'"agent":null' in line or len(line) > MAX_LINE:
        return None  # most of the engine's own lines: no parse
    try:
        rec = jsonfast.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None  # a torn or foreign line
    if not isinstance(rec, dict) or rec.get("agent") not in local:
        return None
    data = rec.get("data")
    if isinstance(data, dict) and data.get("node") not in (None, node):
        return None
    if not isinstance(rec.get("ts"), str) or not isinstance(rec.get("type"), str):
        return None
    return rec


def _files(path: str) -> list[tuple[int, str]]:
    """The log's files with their inodes, oldest first."""
    out: list[tuple[int, str]] = []
    for name in log_files(path):
        try:
            ino = os.stat(name).st_ino
        except OSError:
            continue
        if all(ino != i for i, _ in out):
            out.append((ino, name))
    return out


def read_after(path: str, pos: Pos, limit: int = BATCH) -> tuple[list[tuple[Pos, bytes]], Pos]:
    """Up to `limit` complete lines after `pos`, oldest first, across the rotated files, each
    with the position after it; and the position after everything read (a rotated file read
    to its end moves it to the start of the next newer one). A position whose file is no
    longer kept starts at the oldest file kept."""
    files = _files(path)
    at = next((k for k, (ino, _) in enumerate(files) if ino == pos[0]), None)
    if at is None:
        if not files:
            return [], pos
        at, offset = 0, 0
    else:
        offset = pos[1]
    end = (files[at][0], offset)
    out: list[tuple[Pos, bytes]] = []
    for k in range(at, len(files)):
        ino, name = files[k]
        try:
            fh = open(name, "rb")  # noqa: SIM115 - closed below
        except OSError:
            break
        with fh:
            st = os.fstat(fh.fileno())
            if st.st_ino != ino:
                break  # renamed under us by a rotation: the next pass lists again
            if offset > st.st_size:
                offset = 0  # an inode used again by a new file: it is read whole
            fh.seek(offset)
            data = fh.read(READ_BYTES)
        start = 0
        while len(out) < limit:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            line = data[start:nl]
            start = nl + 1
            if line.strip():
                out.append(((ino, offset + start), line))
        end = (ino, offset + start)
        if len(out) >= limit:
            break
        # a rotated file read to its end is done (a last line cut short there stays so)
        if k + 1 < len(files) and offset + len(data) >= st.st_size:
            offset = 0
            end = (files[k + 1][0], 0)
            continue
        break
    return out, end


class Cursor:
    """Where the publisher is in the log; a file, so an engine restart goes on from there."""

    def __init__(self, state_dir: str, log_path: str) -> None:
        self.path = os.path.join(state_dir, CURSOR_FILE)
        self.log_path = log_path
        self.saved_at = 0.0
        self.problem = ""  # one line naming the file and the field, when it was bad
        self.pos = self._load()
        good = os.path.exists(self.path) and not self.problem
        self._saved: Pos | None = self.pos if good else None
        if self._saved is None:
            # The first start with a cluster (or a bad file): from here on (the log before
            # it is history the other rooms never had); saved at once, so a first start cut
            # off catches up.
            self.save()

    def _load(self) -> Pos:
        try:
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            doc = None  # none yet: from the log's end, as on a first start
        except (OSError, ValueError) as exc:
            doc = None
            self.problem = f"{self.path}: unreadable ({type(exc).__name__})"
        if doc is not None:
            for field in ("ino", "offset"):
                value = doc.get(field) if isinstance(doc, dict) else None
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    self.problem = f"{self.path}: field '{field}' must be a whole number"
                    break
            else:
                return (doc["ino"], doc["offset"])
        try:
            st = os.stat(self.log_path)
            return (st.st_ino, st.st_size)
        except OSError:
            return (0, 0)

    def save(self) -> None:
        if self.pos == self._saved:
            return
        with contextlib.suppress(OSError):  # a full disk: the last-id check still holds
            atomic_write(self.path, json.dumps({"ino": self.pos[0], "offset": self.pos[1]}))
            self._saved = self.pos
        self.saved_at = time.monotonic()


class EventPublisher:
    """Follows the log and publishes this machine's agents' events (runs on the cluster
    client's loop; `wake` from any thread)."""

    def __init__(
        self,
        client: Any,
        names: Names,
        node: str,
        local: frozenset[str],
        log_path: str,
        state_dir: str,
        ready: Callable[[], bool],
        connections: Callable[[], int],
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.client = client
        self.names = names
        self.node = node
        self.local = local
        self.log_path = log_path
        self.cursor = Cursor(state_dir, log_path)
        if self.cursor.problem and emit is not None:
            # what was logged since the cursor's last good write is not sent: said once
            emit(
                Event(
                    "cluster.fault",
                    f"{self.cursor.problem}; this machine's events go to the other rooms "
                    "from the log's end",
                    level="warn",
                    data={"node": node},
                )
            )
        self.ready = ready
        self.connections = connections
        self.emit = emit
        self._said_refused = False  # one event for a stream that refuses, not one a pass
        self.subject = names.events(node)
        self.published = 0  # events the stream acked (duplicates it dropped included)
        self.stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._woken = False

    def wake(self) -> None:
        """Something was logged about a local agent: publish now rather than at the poll."""
        loop = self._loop
        if loop is None or self._woken:
            return
        self._woken = True
        with contextlib.suppress(RuntimeError):  # the loop closed: stopping
            loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self._woken = False
        if self._wake is not None:
            self._wake.set()

    async def _idle(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        aligned = -1  # the connection the last-id check was made on
        while not self.stopped:
            if not (self.client.up and self.ready()):
                await self._idle(RETRY_S)
                continue
            if aligned != self.connections():
                aligned = self.connections()
                try:
                    await self._align()
                except Exception:
                    aligned = -1  # the stream did not answer: ask again on the next pass
                    await self._idle(RETRY_S)
                    continue
            lines, end = read_after(self.log_path, self.cursor.pos)
            todo = [
                (line, rec)
                for _pos, line in lines
                if (rec := shareable(line, self.local, self.node)) is not None
            ]
            if todo:
                try:
                    await self._publish(todo)
                except Exception as exc:
                    # not every one acked: the cursor stays, the next pass sends them again
                    # and the stream drops the ids it holds
                    self._refused(exc)
                    await self._idle(RETRY_S)
                    continue
                self._said_refused = False
            if end != self.cursor.pos:
                self.cursor.pos = end
                if time.monotonic() - self.cursor.saved_at >= CURSOR_EVERY_S:
                    self.cursor.save()
            if not lines:
                await self._idle(IDLE_POLL_S)

    def _refused(self, exc: Exception) -> None:
        """The stream itself said no (not a lost link, which `cluster.down` reports): one
        event until a publish goes through again; the events stay in the log meanwhile."""
        from nats.js.errors import APIError

        if self.emit is None or self._said_refused or not isinstance(exc, APIError):
            return
        self._said_refused = True
        self.emit(
            Event(
                "cluster.fault",
                f"node {self.node}: the events stream refused this machine's events "
                f"({type(exc).__name__}: {str(exc)[:160]}); they stay in its log, retried "
                f"every {RETRY_S:g} s",
                level="error",
                data={"node": self.node},
            )
        )

    async def _publish(self, todo: list[tuple[bytes, dict]]) -> None:
        js = self.client.js
        acks = []
        for line, rec in todo:
            body = json.dumps({**rec, "node": self.node}, ensure_ascii=False).encode()
            headers = {"Nats-Msg-Id": event_id(self.node, line)}
            acks.append(await js.publish_async(self.subject, body, headers=headers))
        await asyncio.wait_for(asyncio.gather(*acks), self.client.settings.timeout_s)
        self.published += len(acks)

    async def _align(self) -> None:
        """Skip the log up to the last line the stream holds from this node when it lies
        past the cursor (acked, and the engine stopped before the cursor was written)."""
        try:
            last = await self.client.js.get_last_msg(self.names.events_stream, self.subject)
        except Exception as exc:
            from nats.js.errors import NotFoundError

            if isinstance(exc, NotFoundError):
                return  # nothing from this node in the stream
            raise
        wanted = (last.headers or {}).get("Nats-Msg-Id")
        if not wanted:
            return
        pos = self.cursor.pos
        while True:
            lines, end = read_after(self.log_path, pos, 4096)
            for after, line in lines:
                if event_id(self.node, line) == wanted:
                    self.cursor.pos = after
                    self.cursor.save()
                    return
            if end == pos:
                return  # not ahead of the cursor: published before it, nothing to skip
            pos = end


def _where(msg: Any) -> tuple[int, bool]:
    """A message's stream sequence and whether it was delivered before (0, False: not a
    JetStream message, as the tests' fakes are)."""
    try:
        meta = msg.metadata
        return int(meta.sequence.stream), int(meta.num_delivered) > 1
    except Exception:
        return 0, False


def shown(data: bytes) -> Event | None:
    """Another node's event as this machine's room shows it (marked with the node), or None
    when it is not one. Its text stays text: the room never reads it as markup."""
    try:
        rec = json.loads(data)
        node = rec.pop("node")
        ev = Event.from_json(rec)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(node, str):
        return None
    ev.msg = f"{node[:32]}: {ev.msg}"
    ev.data = {**ev.data, "node": node}
    return ev


async def consume(
    sub: Any,
    own_subject: str,
    show: Callable[[Event, int, bool], None],
    stopped: Callable[[], bool],
) -> None:
    """The other nodes' events from this engine's durable consumer, to `show(event, its
    stream sequence, whether it was delivered before)`; the batch is acked as soon as it
    was shown."""
    import nats.errors

    while not stopped():
        try:
            msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_WAIT_S)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except Exception:
            await asyncio.sleep(RETRY_S)  # away: the durable consumer keeps our place
            continue
        for msg in msgs:
            # this engine's own are skipped: its room has them from its log
            ev = shown(msg.data) if msg.subject != own_subject else None
            if ev is not None:
                show(ev, *_where(msg))
            with contextlib.suppress(Exception):
                await msg.ack()  # lost: redelivered, and dropped by its sequence (remote_log.py)
