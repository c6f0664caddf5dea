"""The event log: append-only JSONL, size-rotated, with a tail reader that reads backwards.

One line per event: {"ts", "type", "level", "agent", "msg", "data"}. `type` is dotted
(`message.routed`, `message.bounced`, `agent.state`, ...); `agent` names the domain the event
is about, or is null. Stdlib only: any comm-node process may append (single O_APPEND writes
do not interleave), and `comm-node log` reads it without the engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from io import BufferedReader

from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.fileio import FILE_MODE

LEVELS = ("debug", "info", "warn", "error")
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_KEEP = 5
MAX_LINE = 64 * 1024


class Event:
    """One event. Plain and slotted: the engine writes thousands a second."""

    __slots__ = ("agent", "data", "level", "msg", "ts", "type")

    def __init__(
        self,
        type: str,
        msg: str = "",
        *,
        agent: str | None = None,
        level: str = "info",
        data: dict | None = None,
        ts: str | None = None,
    ) -> None:
        from comm_node_tui.protocol.messages import now_iso

        if level not in LEVELS:
            raise ValueError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
        self.type = type
        self.msg = msg
        self.agent = agent
        self.level = level
        self.data = data or {}
        self.ts = ts or now_iso()

    def to_json(self) -> dict:
        return {
            "ts": self.ts,
            "type": self.type,
            "level": self.level,
            "agent": self.agent,
            "msg": self.msg,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: object) -> Event:
        """Strict enough to trust what comes back: ValueError on a malformed record."""
        if not isinstance(obj, dict):
            raise ValueError("event is not an object")
        ts, typ = obj.get("ts"), obj.get("type")
        if not isinstance(ts, str) or not isinstance(typ, str):
            raise ValueError("event needs text fields ts and type")
        agent = obj.get("agent")
        data = obj.get("data") or {}
        level = obj.get("level", "info")
        if agent is not None and not isinstance(agent, str):
            raise ValueError("agent must be text or null")
        if not isinstance(data, dict):
            raise ValueError("data must be an object")
        return cls(
            typ,
            str(obj.get("msg", "")),
            agent=agent,
            level=level if level in LEVELS else "info",
            data=data,
            ts=ts,
        )

    def __repr__(self) -> str:
        return f"Event({self.type!r}, {self.msg!r}, agent={self.agent!r})"


class EventLog:
    """Appends events to `path` and rotates it at `max_bytes` (path.1 ... path.KEEP).

    The file stays open between appends (one open per event halved routing throughput on
    a slow disk); it is reopened after a rotation and when someone removed it.
    """

    CHECK_EVERY = 256  # appends between checks that the open file is still the log

    def __init__(
        self, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._fd: int | None = None
        self._size = 0
        self._since_check = 0

    def _open(self) -> int:
        if self._fd is not None and self._since_check < self.CHECK_EVERY:
            self._since_check += 1
            return self._fd
        if self._fd is not None:
            try:
                if os.fstat(self._fd).st_nlink > 0 and os.path.exists(self.path):
                    self._since_check = 0
                    return self._fd
            except OSError:
                pass
            self.close()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        self._fd = fd
        self._size = os.fstat(fd).st_size
        self._since_check = 0
        return fd

    def append(self, event: Event) -> None:
        line = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        os.write(self._open(), data)
        self._size += len(data)
        if self._size >= self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        self.close()
        for i in range(self.keep - 1, 0, -1):
            src = rotated_name(self.path, i)
            if os.path.exists(src):
                os.replace(src, rotated_name(self.path, i + 1))
        if os.path.exists(self.path):
            os.replace(self.path, rotated_name(self.path, 1))

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None


def rotated_name(path: str, i: int) -> str:
    base, ext = os.path.splitext(path)
    return f"{base}.{i}{ext}"


def log_files(path: str, keep: int = DEFAULT_KEEP * 4) -> list[str]:
    """The log's files, oldest first."""
    files = [rotated_name(path, i) for i in range(keep, 0, -1)]
    files.append(path)
    return [f for f in files if os.path.isfile(f)]


def _parse_line(line: bytes) -> Event | None:
    try:
        return Event.from_json(json.loads(line))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None  # a torn last line or garbage: skipped, never fatal


def _lines_backwards(path: str, block: int = 64 * 1024) -> Iterator[bytes]:
    """Complete lines of a file, last first, reading fixed blocks from the end."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line.strip() and len(line) <= MAX_LINE:
                    yield line
            if len(rest) > MAX_LINE:  # an absurd line: drop it rather than grow forever
                rest = b""
        if rest.strip():
            yield rest


def tail(path: str, n: int = 50, where: Callable[[Event], bool] | None = None) -> list[Event]:
    """The last `n` events matching `where`, oldest first, across rotated files."""
    found: list[Event] = []
    for file in reversed(log_files(path)):
        for line in _lines_backwards(file):
            ev = _parse_line(line)
            if ev is not None and (where is None or where(ev)):
                found.append(ev)
                if len(found) >= n:
                    return found[::-1]
    return found[::-1]


def follow(
    path: str,
    where: Callable[[Event], bool] | None = None,
    *,
    from_end: bool = True,
    poll_s: float = 0.1,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Events appended to `path` (after what it holds now, when `from_end`).

    Polls the file: cheap for one reader, and it survives rotation (a new inode or a
    shorter file means the writer rotated, so reading restarts at the new file's start).
    A reader that slept through several rotations (a starved `log -f` during a burst) reads
    the rotated files in between too, oldest first, while they are still kept.
    """
    offset = os.path.getsize(path) if from_end and os.path.exists(path) else 0
    fh = None
    ino = None
    buf = b""
    pending: list[BufferedReader] = []  # after a rotation: the newer files, oldest first
    while stop is None or not stop():
        if fh is None and pending:
            fh = pending.pop(0)
            ino = os.fstat(fh.fileno()).st_ino
            offset = 0
        if fh is None:
            try:
                fh = open(path, "rb")  # noqa: SIM115 - kept open across iterations
            except FileNotFoundError:
                offset = 0
                time.sleep(poll_s)
                continue
            ino = os.fstat(fh.fileno()).st_ino
            fh.seek(offset)
            offset = 0
        chunk = fh.read()
        if chunk:
            events, buf = _complete_lines(buf + chunk, where)
            yield from events
            continue
        if pending:  # a rotated file read to its end: on to the next newer one
            fh.close()
            fh, buf = None, b""
            continue
        try:
            st = os.stat(path)
            if st.st_ino != ino or st.st_size < fh.tell():
                if st.st_ino != ino:
                    # The writer may have appended once more between our read and its
                    # rotation: the old file is read to its end before it is left.
                    events, _torn = _complete_lines(buf + fh.read(), where)
                    yield from events
                fh.close()
                fh = None
                buf = b""
                if st.st_ino != ino and ino is not None:
                    pending = _newer_files(path, ino)
                continue
        except FileNotFoundError:
            pass
        time.sleep(poll_s)
    for f in [fh, *pending]:
        if f is not None:
            f.close()


def _complete_lines(
    data: bytes, where: Callable[[Event], bool] | None
) -> tuple[list[Event], bytes]:
    """The events of `data`'s complete lines (that match `where`), and what is left after
    its last newline."""
    *lines, rest = data.split(b"\n")
    events = []
    for line in lines:
        ev = _parse_line(line) if line.strip() else None
        if ev is not None and (where is None or where(ev)):
            events.append(ev)
    return events, rest


def _newer_files(path: str, ino: int) -> list[BufferedReader]:
    """After a rotation: the log's files newer than the one with inode `ino`, oldest first,
    opened at once (a file opened stays readable when the writer renames or drops it).

    When `ino` is gone from the kept files (the reader fell more than `keep` rotations
    behind, or someone removed the log), none: follow() goes on with the current file, as
    the files left may be ones it read already."""
    opened: list[tuple[int, BufferedReader]] = []
    for name in log_files(path):
        try:
            f = open(name, "rb")  # noqa: SIM115 - handed to follow(), which closes it
        except OSError:
            continue
        i = os.fstat(f.fileno()).st_ino
        if any(i == j for j, _ in opened):  # renamed under us and seen twice
            f.close()
            continue
        opened.append((i, f))
    at = next((k for k, (i, _) in enumerate(opened) if i == ino), None)
    keep = opened[at + 1 :] if at is not None else []
    for _, f in opened:
        if all(f is not g for _, g in keep):
            f.close()
    return [f for _, f in keep]
