"""Linux's inotify without a polling thread: the engine's watcher and a viewer's.

watchfiles (the engine's watcher until issue 22) runs its Rust watcher in a thread that
wakes every `step` milliseconds to take the GIL and ask Python whether to stop, changes or
not: at the engine's 5 ms step, 0.7 % of a core in a room where nothing happens (of 2.8 %;
a viewer's at 20 ms, likewise). Here the inotify descriptor is read when the kernel says it
has something: the engine's event loop watches it (add_reader), a viewer's thread blocks in
select. A batch is gathered as watchfiles gathers it: after the first change, until a step
passes with none new or `debounce` milliseconds have passed.

The descriptor is inotify_simple's (a thin, kept wrapper of the system calls). Not Linux:
`available()` is False and the callers keep watchfiles.
An overflow of the kernel's queue loses changes, as it does for watchfiles: the engine's
timed rescan is there for that."""

from __future__ import annotations

import asyncio
import errno
import os
import select
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Iterator

try:  # a Linux dependency only (pyproject.toml)
    from inotify_simple import INotify  # type: ignore[import-untyped]
except (ImportError, OSError):
    INotify = None

IN_MODIFY, IN_ATTRIB = 0x2, 0x4
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED = 0x400, 0x800, 0x8000
# What watchfiles reports: no IN_CLOSE_WRITE (a write already came as IN_MODIFY, and a file
# opened for writing and closed unwritten, as a lock file is by every reader that takes its
# lock, is no change: counting it, a viewer woke itself 20 times a second, 13-20 % of a core)
MASK = (
    IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
GONE = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF  # the watched directory itself
ADDED, MODIFIED, DELETED = 1, 2, 3  # watchfiles.Change's values (only paths are read)

Changes = set[tuple[int, str]]
Wanted = Callable[[int, str], bool]


def available() -> bool:
    return INotify is not None and sys.platform.startswith("linux")


class Inotify:
    """One inotify descriptor (inotify_simple) watching `paths` (directories, not
    recursive); a path that is gone or unreadable is left out, as watchfiles'
    ignore_permission_denied did."""

    def __init__(self, paths: list[str]) -> None:
        assert INotify is not None, "available() says when there is inotify"
        self._ino = INotify(nonblocking=True)
        self.fd = self._ino.fileno()
        self.paths: dict[int, str] = {}
        try:
            for p in paths:
                try:
                    self.paths[self._ino.add_watch(p, MASK)] = p
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR):
                        raise
        except BaseException:
            self._ino.close()
            raise

    def read(self) -> Changes:
        """What the kernel has queued, drained; nothing when it has nothing."""
        out: Changes = set()
        while True:
            try:
                events = self._ino.read(timeout=0)
            except BlockingIOError:
                return out
            except InterruptedError:
                continue
            if not events:
                return out
            for ev in events:
                base = self.paths.get(ev.wd)
                if base is None:
                    continue  # an overflow (wd -1), or a watch already removed
                if ev.mask & GONE:
                    # the directory itself went: its path is the change (the engine
                    # re-arms its watcher when the directories to watch differ)
                    out.add((DELETED, base))
                    if ev.mask & IN_IGNORED:
                        del self.paths[ev.wd]
                    continue
                path = os.path.join(base, ev.name) if ev.name else base
                if ev.mask & (IN_CREATE | IN_MOVED_TO):
                    out.add((ADDED, path))
                elif ev.mask & (IN_DELETE | IN_MOVED_FROM):
                    out.add((DELETED, path))
                else:
                    out.add((MODIFIED, path))

    def close(self) -> None:
        if self.fd >= 0:
            self._ino.close()
            self.fd = -1


async def awatch(
    paths: list[str],
    stop: asyncio.Event,
    *,
    debounce_ms: int,
    step_ms: int,
    wanted: Wanted | None = None,
) -> AsyncGenerator[Changes, None]:
    """Batches of changes under `paths` until `stop` is set, read on this event loop."""
    loop = asyncio.get_running_loop()
    ino = Inotify(paths)
    readable = asyncio.Event()
    loop.add_reader(ino.fd, readable.set)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            waiting = asyncio.ensure_future(readable.wait())
            await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if stop.is_set():
                return
            batch: Changes = set()
            began = loop.time()
            while True:
                readable.clear()
                new = ino.read()
                batch |= new
                if (batch and not new) or loop.time() - began >= debounce_ms / 1000:
                    break
                await asyncio.sleep(step_ms / 1000)
                if stop.is_set():
                    return
            if wanted is not None:
                batch = {c for c in batch if wanted(*c)}
            if batch:
                yield batch
    finally:
        stopped.cancel()
        loop.remove_reader(ino.fd)
        ino.close()


def watch(
    paths: list[str], stop: threading.Event, *, debounce_ms: int, step_ms: int
) -> Iterator[Changes]:
    """The same, for a thread: it blocks in select (woken every half second to see `stop`,
    two wake-ups a second instead of fifty)."""
    ino = Inotify(paths)
    try:
        while not stop.is_set():
            if not select.select([ino.fd], [], [], 0.5)[0]:
                continue
            batch: Changes = set()
            waited = 0.0
            while True:
                new = ino.read()
                batch |= new
                if (batch and not new) or waited >= debounce_ms / 1000:
                    break
                select.select([ino.fd], [], [], step_ms / 1000)
                waited += step_ms / 1000
            if batch:
                yield batch
    finally:
        ino.close()
