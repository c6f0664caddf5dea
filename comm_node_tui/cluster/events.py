"""([cluster]) Events about this machine's agents, kept for the other machines' rooms across
cut-offs and restarts (docs/cluster.md, "What goes through NATS").

The owner's event log is the record. A publisher follows it from a cursor (a position in the
log: the file's inode, a hash of its first line and an offset, in
`.comm-node/guarded/cluster-events.json`, walled from sandboxed agents as a folder: an agent
that moved it would have its engine skip its events; an older comm-node's
`.comm-node/cluster-events.json` is read until the next save moves it) and publishes each
event about one of this machine's agents to the stream `CN_<project>_EVENTS`, on
`cn.<project>.events.<node>`, with `Nats-Msg-Id` = the node and a hash of the line and its
place in the log (two equal lines are two events). The
cursor moves only past lines the stream acked: while the link is down nothing moves, and
when it returns (or the engine starts again) what was logged meanwhile goes out, oldest
first. A line sent twice (an ack lost, a crash between the ack and the cursor's write) has
the same id: the stream drops it within its de-duplication window, and on every (re)connection
the publisher first asks the stream for the last id it holds from this node and skips the log
up to that line, so even a restart long after the window doubles nothing.

A line the stream can never take (over its message size, or the server's payload limit) and
a line over READ_BYTES are skipped with one `cluster.fault` naming where it is: one bad line
(agents append to the log) must not stop this machine's events for good. The body is the
line's own bytes with the node added, so what is sent is never larger than the line allows.

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
import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from comm_node_tui.cluster.client import RETRY_S
from comm_node_tui.cluster.names import Names, token
from comm_node_tui.protocol import guarded, jsonfast
from comm_node_tui.protocol.events import MAX_LINE, Event, log_files

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

Pos = tuple[int, str, int]  # (inode of a log file, its head: `_head`, byte offset in it)
HEAD_BYTES = 4096  # a file's head: its first line, or its first this many bytes


def event_id(node: str, pos: Pos, line: bytes) -> str:
    """The de-duplication id of one log line: the line and where it ends in the log (its
    file's inode and head, the offset), so the same line sent again has the same id and two
    equal lines (an agent repeating itself) have two."""
    where = f"{pos[0]}:{pos[1]}:{pos[2]}:".encode()
    return f"{token(node)}:{hashlib.sha256(where + line).hexdigest()[:32]}"


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


def _head(fd: int) -> str:
    """What tells this file from another that got its inode after it (ext4 gives a freed
    inode again) or from itself truncated: a hash of its first line (of its first HEAD_BYTES
    when that line is longer); "" while neither is complete (it never changes after)."""
    first = os.pread(fd, HEAD_BYTES, 0)
    nl = first.find(b"\n")
    if nl >= 0:
        first = first[: nl + 1]
    elif len(first) < HEAD_BYTES:
        return ""
    return hashlib.sha256(first).hexdigest()[:16]


def head_of(path: str) -> tuple[int, str, int] | None:
    """(inode, head, size) of one file, None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        return (st.st_ino, _head(fd), st.st_size)
    finally:
        os.close(fd)


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


def _same(pos: Pos, name: str) -> bool:
    """Whether `name` is still the file `pos` is in: its head as recorded ("" recorded: not
    known then, the inode alone says) and at least `pos`'s offset long."""
    now = head_of(name)
    return now is not None and (not pos[1] or now[1] == pos[1]) and now[2] >= pos[2]


def read_after(
    path: str,
    pos: Pos,
    limit: int = BATCH,
    skipped: list[tuple[str, int, int]] | None = None,
) -> tuple[list[tuple[Pos, bytes]], Pos]:
    """Up to `limit` complete lines after `pos`, oldest first, across the rotated files, each
    with the position after it; and the position after everything read (a rotated file read
    to its end moves it to the start of the next newer one). A position whose file is no
    longer kept (or is another file now: an inode given again, a log truncated in place)
    starts at the oldest file kept: every kept file is newer than it. A line longer than
    READ_BYTES is stepped over and put in `skipped` as (file, offset, length)."""
    files = _files(path)
    at = next((k for k, (ino, _) in enumerate(files) if ino == pos[0]), None)
    if at is not None and not _same(pos, files[at][1]):
        at = None
    if at is None:
        if not files:
            return [], pos
        at, offset = 0, 0
    else:
        offset = pos[2]
    end = pos if offset else (files[at][0], "", 0)
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
            fh.seek(offset)
            data = fh.read(READ_BYTES)
            # after the read: a line read means the file's first line is complete
            head = _head(fh.fileno())
            over = 0
            if len(data) == READ_BYTES and b"\n" not in data:
                over = _past_newline(fh, offset + len(data))
        if over:
            # one line longer than a read: never sent, and never read again; the next pass
            # goes on from past it
            if skipped is not None:
                skipped.append((name, offset, over - offset))
            return out, (ino, head, over)
        start = 0
        while len(out) < limit:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            line = data[start:nl]
            start = nl + 1
            if line.strip():
                out.append(((ino, head, offset + start), line))
        end = (ino, head, offset + start)
        if len(out) >= limit:
            break
        # a rotated file read to its end is done (a last line cut short there stays so)
        if k + 1 < len(files) and offset + len(data) >= st.st_size:
            offset = 0
            end = (files[k + 1][0], "", 0)
            continue
        break
    return out, end


def _past_newline(fh: Any, at: int) -> int:
    """The offset after the next newline from `at` (the end of the file when there is none
    yet: the rest of a line still being written is then a fragment, never an event)."""
    fh.seek(at)
    while chunk := fh.read(1024 * 1024):
        nl = chunk.find(b"\n")
        if nl >= 0:
            return at + nl + 1
        at += len(chunk)
    return at


class Cursor:
    """Where the publisher is in the log; a file, so an engine restart goes on from there."""

    def __init__(self, state_dir: str, log_path: str) -> None:
        self.state_dir = state_dir
        self.path = guarded.source(state_dir, CURSOR_FILE)  # where it is read (_load)
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
        except (OSError, ValueError, RecursionError) as exc:
            doc = None
            self.problem = f"{self.path}: unreadable ({type(exc).__name__})"
        if doc is not None:
            for field in ("ino", "offset"):
                value = doc.get(field) if isinstance(doc, dict) else None
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    self.problem = f"{self.path}: field '{field}' must be a whole number"
                    break
            else:
                head = doc.get("head", "")  # none in a cursor written before heads
                if isinstance(head, str) and len(head) <= 64:
                    return (doc["ino"], head, doc["offset"])
                self.problem = f"{self.path}: field 'head' must be a short text"
        now = head_of(self.log_path)
        return (0, "", 0) if now is None else now

    def save(self) -> None:
        if self.pos == self._saved:
            return
        ino, head, offset = self.pos
        text = json.dumps({"ino": ino, "head": head, "offset": offset})
        with contextlib.suppress(OSError):  # a full disk: the last-id check still holds
            guarded.write(self.state_dir, CURSOR_FILE, text)  # moves an older comm-node's
            self.path = guarded.path_of(self.state_dir, CURSOR_FILE)
            self._saved = self.pos
        self.saved_at = time.monotonic()


def _no_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


class Refused(Exception):
    """The stream's answer to one publish was an error."""

    def __init__(self, text: str, code: int = 0) -> None:
        super().__init__(text)
        self.code = code


TOO_BIG_CODE = 10054  # nats-server: "message size exceeds maximum allowed"
TOO_BIG = Refused("over the server's max_payload", TOO_BIG_CODE)


def _answer(msg: Any) -> Refused | None:
    """None for the stream's ack of one publish, else why it was refused."""
    if (msg.headers or {}).get("Status") == "503":
        return Refused("no events stream (no responders)")
    try:
        resp = json.loads(msg.data)
        err = resp.get("error") if isinstance(resp, dict) else None
    except ValueError:
        return Refused("an answer that is not JSON")
    if err is None:
        return None
    if not isinstance(err, dict):
        return Refused(str(err)[:160])
    code = err.get("err_code", 0)
    return Refused(
        f"{err.get('description', '')} (code {err.get('code')}, {code})"[:200],
        code if isinstance(code, int) else 0,
    )


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
        self.refusals = 0  # passes the stream refused (said once: `_refused`)
        self.stopped = False
        self._inbox: tuple[Any, str] | None = None  # (connection, prefix) for the acks
        self._acks: dict[str, asyncio.Future] = {}  # reply subject -> its publish's ack
        self._serial = itertools.count()
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
            skipped: list[tuple[str, int, int]] = []
            lines, end = read_after(self.log_path, self.cursor.pos, skipped=skipped)
            for name, offset, size in skipped:
                self._fault(
                    f"{name}: the line at byte {offset} ({size} bytes) is longer than "
                    f"{READ_BYTES} bytes: not sent to the other rooms"
                )
            todo = []
            before = self.cursor.pos
            for after, line in lines:
                if (rec := shareable(line, self.local, self.node)) is not None:
                    todo.append((before, after, line, self.body(line, rec)))
                before = after
            if todo:
                done, why = await self._publish(todo)
                if why is not None:
                    # the rest stays in the log: the cursor goes to the first line not
                    # through, the next pass sends from there (the stream drops the ids
                    # it holds)
                    self._move(todo[done][0])
                    self._refused(why)
                    await self._idle(RETRY_S)
                    continue
                self._said_refused = False
            self._move(end)
            if not lines and not skipped:
                await self._idle(IDLE_POLL_S)

    def _move(self, pos: Pos) -> None:
        if pos != self.cursor.pos:
            self.cursor.pos = pos
            if time.monotonic() - self.cursor.saved_at >= CURSOR_EVERY_S:
                self.cursor.save()

    def _fault(self, text: str) -> None:
        if self.emit is not None:
            self.emit(Event("cluster.fault", text, level="error", data={"node": self.node}))

    def _refused(self, why: Exception) -> None:
        """The stream itself said no (not a lost link, which `cluster.down` reports): one
        event until a publish goes through again; the events stay in the log meanwhile."""
        if not isinstance(why, Refused):
            return
        self.refusals += 1
        if self._said_refused:
            return
        self._said_refused = True
        self._fault(
            f"node {self.node}: the events stream refused this machine's events "
            f"({str(why)[:160]}); they stay in its log, retried every {RETRY_S:g} s"
        )

    def body(self, line: bytes, rec: dict) -> bytes:
        """What is published for one line: the line's own bytes with the node added (a
        later key wins in JSON: it replaces any "node" the line had), never re-encoded, so
        never larger than the line and the node's name. A line holding an escaped lone
        surrogate (valid JSON, not text: no reader could write it into a log) goes
        re-written with U+FFFD in its place."""
        if b"\\ud" in line or b"\\uD" in line:
            clean = _no_surrogates(rec)
            if clean != rec:
                return json.dumps(
                    {**clean, "node": self.node}, ensure_ascii=False, separators=(",", ":")
                ).encode()
        return line.rstrip()[:-1] + b',"node":' + json.dumps(self.node).encode() + b"}"

    async def _replies(self) -> tuple[Any, str]:
        """The connection and this publisher's inbox for the stream's acks. nats-py 2.16's
        publish_async never resolves the ack of a refused publish (its reply handler raises
        instead), so a refusal looked like a lost link: the acks are read here."""
        nc = self.client.nc
        if self._inbox is None or self._inbox[0] is not nc:
            prefix = nc.new_inbox()

            async def reply(msg: Any) -> None:
                fut = self._acks.pop(msg.subject, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)

            # a core subscription: nats-py makes it again on a reconnection by itself
            await nc.subscribe(prefix + ".*", cb=reply)
            self._inbox = (nc, prefix)
        return self._inbox

    async def _publish(
        self, todo: list[tuple[Pos, Pos, bytes, bytes]]
    ) -> tuple[int, Exception | None]:
        """Publish a batch, in order, and await the acks together: how many, from the first,
        went through (acked, or skipped with a fault: a line the stream can never take), and
        why the next did not (None: all did; Refused: the stream said no; else the link)."""
        import nats.errors

        nc, prefix = await self._replies()
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future] = []
        inboxes: list[str] = []
        for _before, after, line, body in todo:
            fut = loop.create_future()
            inbox = f"{prefix}.{next(self._serial)}"
            self._acks[inbox] = fut
            inboxes.append(inbox)
            headers = {"Nats-Msg-Id": event_id(self.node, after, line)}
            try:
                await nc.publish(self.subject, body, reply=inbox, headers=headers)
            except nats.errors.MaxPayloadError:
                fut.set_result(TOO_BIG)  # over the server's max_payload: never goes
            except Exception as exc:
                fut.set_exception(exc)
            futs.append(fut)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(futs, timeout=self.client.settings.timeout_s)
        try:
            for k, fut in enumerate(futs):
                if not fut.done():
                    return k, TimeoutError("no ack")
                if (err := fut.exception()) is not None:
                    return k, err if isinstance(err, Exception) else Exception(repr(err))
                why = fut.result()
                why = why if isinstance(why, Refused) else _answer(why)
                if why is not None and why.code == TOO_BIG_CODE:
                    # this line can never go: skipped, said once (its place in the log)
                    after = todo[k][1]
                    self._fault(
                        f"{self.log_path} (file inode {after[0]}): the line ending at byte "
                        f"{after[2]} was refused by the events stream ({why}): not sent to "
                        "the other rooms"
                    )
                elif why is not None:
                    return k, why
                else:
                    self.published += 1
            return len(futs), None
        finally:
            for inbox in inboxes:
                self._acks.pop(inbox, None)
            for fut in futs:
                if fut.done() and not fut.cancelled():
                    fut.exception()  # retrieved: no "never retrieved" noise for the rest

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
                if event_id(self.node, after, line) == wanted:
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
        rec = _encodable(json.loads(data))
        node = rec.pop("node")
        ev = Event.from_json(rec)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if not isinstance(node, str):
        return None
    ev.msg = f"{node[:32]}: {ev.msg}"
    ev.data = {**ev.data, "node": node}
    return ev


def _encodable(rec: Any) -> Any:
    """`rec` with any lone surrogate (an escaped `\ud800` in another node's JSON) made `?`:
    written as it is, it stopped the remote log's writer (UTF-8 cannot encode it)."""
    text = json.dumps(rec, ensure_ascii=False)
    try:
        text.encode("utf-8")
        return rec
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-8", "replace"))


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
                try:
                    show(ev, *_where(msg))
                except Exception:  # one message that cannot be shown never stops the rest
                    pass
            with contextlib.suppress(Exception):
                await msg.ack()  # lost: redelivered, and dropped by its sequence (remote_log.py)
