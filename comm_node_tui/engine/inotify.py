"""Linux's inotify without a polling thread: the engine's watcher and a viewer's.

watchfiles (the engine's watcher until issue 22) runs its Rust watcher in a thread that
wakes every `step` milliseconds to take the GIL and ask Python whether to stop, changes or
not: at the engine's 5 ms step, 0.7 % of a core in a room where nothing happens (of 2.8 %;
a viewer's at 20 ms, likewise). Here the inotify descriptor is read when the kernel says it
has something: the engine's event loop watches it (add_reader), a viewer's thread blocks in
select. A batch is gathered as watchfiles gathers it: after the first change, until a step
passes with none new or `debounce` milliseconds have passed.

Not Linux, or no inotify (limits): `available()` is False and the callers keep watchfiles.
An overflow of the kernel's queue loses changes, as it does for watchfiles: the engine's
timed rescan is there for that."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import select
import struct
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Iterator

IN_MODIFY, IN_ATTRIB = 0x2, 0x4
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, 0o2000000
# What watchfiles reports: no IN_CLOSE_WRITE (a write already came as IN_MODIFY, and a file
# opened for writing and closed unwritten, as a lock file is by every reader that takes its
# lock, is no change: counting it, a viewer woke itself 20 times a second, 13-20 % of a core)
MASK = (
    IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
ADDED, MODIFIED, DELETED = 1, 2, 3  # watchfiles.Change's values (only paths are read)
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL-padded)

Changes = set[tuple[int, str]]
Wanted = Callable[[int, str], bool]

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        lib = _lib()
        return hasattr(lib, "inotify_init1") and hasattr(lib, "inotify_add_watch")
    except OSError:
        return False


class Inotify:
    """One inotify descriptor watching `paths` (directories, not recursive); a path that
    is gone or unreadable is left out, as watchfiles' ignore_permission_denied did."""

    def __init__(self, paths: list[str]) -> None:
        lib = _lib()
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd
        self.paths: dict[int, str] = {}
        try:
            for p in paths:
                wd = lib.inotify_add_watch(fd, os.fsencode(p), MASK)
                if wd >= 0:
                    self.paths[wd] = p
                    continue
                err = ctypes.get_errno()
                if err not in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR):
                    raise OSError(err, f"inotify_add_watch {p}: {os.strerror(err)}")
        except BaseException:
            os.close(fd)
            raise

    def read(self) -> Changes:
        """What the kernel has queued, drained; nothing when it has nothing."""
        out: Changes = set()
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            except InterruptedError:
                continue
            at = 0
            while at + HEADER.size <= len(data):
                wd, mask, _cookie, size = HEADER.unpack_from(data, at)
                name = data[at + HEADER.size : at + HEADER.size + size].rstrip(b"\0")
                at += HEADER.size + size
                base = self.paths.get(wd)
                if base is None:
                    continue  # an overflow (wd -1), or a watch already removed
                if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    # the directory itself went: its path is the change (the engine
                    # re-arms its watcher when the directories to watch differ)
                    out.add((DELETED, base))
                    if mask & IN_IGNORED:
                        del self.paths[wd]
                    continue
                path = os.path.join(base, os.fsdecode(name)) if name else base
                if mask & (IN_CREATE | IN_MOVED_TO):
                    out.add((ADDED, path))
                elif mask & (IN_DELETE | IN_MOVED_FROM):
                    out.add((DELETED, path))
                else:
                    out.add((MODIFIED, path))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
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
