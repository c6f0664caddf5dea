"""Atomic, size-bounded file IO for every protocol file.

Every write goes to a temp file in the same directory and is renamed over the target, so a
reader (or a crash) only ever sees the old or the new content. Every read is bounded and does
not follow a symlink at the last component: agents write these directories and are untrusted.
Imports only the standard library: the agent CLI and hooks start here.
"""

from __future__ import annotations

import os

# typing itself costs ~10 ms to import on the agents' hot path; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

FILE_MODE = 0o600  # state is readable only by the user who runs comm-node
DIR_MODE = 0o700


# Both are ValueErrors: bad input, caught wherever garbage content is (a status.json that is
# 50 MB, or a directory, is as unusable as one that is not JSON).
class FileTooLarge(ValueError):
    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(f"{path}: {size} bytes is over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class NotARegularFile(ValueError):
    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path}: is {what}, not a regular file")


def ensure_dir(path: str) -> None:
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)


def atomic_write(path: str, data: bytes | str, *, mode: int = FILE_MODE) -> None:
    """Write `data` to `path` atomically (temp file + rename in the same directory)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory, name = os.path.split(path)
    tmp = os.path.join(directory or ".", f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


class exclusive_flock:
    """Hold an exclusive flock on `path` (created 0600, never through a link) for a `with`
    block; waits up to `timeout_s` for another holder, then raises `error()`. Closing the file
    releases the lock, so a holder killed with SIGKILL leaves nothing behind. A class, not
    contextlib: this module is on the agent CLI's hot path."""

    def __init__(
        self, path: str, timeout_s: float, error: Callable[[], Exception], poll_s: float = 0.002
    ) -> None:
        self.path, self.timeout_s, self.error, self.poll_s = path, timeout_s, error, poll_s
        self.fd: int | None = None

    def __enter__(self) -> None:
        import fcntl
        import time

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise self.error() from None
                time.sleep(self.poll_s)
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def write_script(path: str, text: str) -> str:
    """An executable file holding `text`, written (atomically) only when it differs: small
    wrappers that several processes may make at once. Returns `path`."""
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return path
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), mode=DIR_MODE, exist_ok=True)
    atomic_write(path, text, mode=0o700)
    return path


def write_exclusive(path: str, data: bytes | str, *, mode: int = FILE_MODE) -> bool:
    """Atomically create `path` unless it already exists; True when this call created it.

    The content is complete before the name appears (link of a finished temp file), so a
    concurrent reader never sees half of it and two racing writers cannot both win.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory, name = os.path.split(path)
    tmp = os.path.join(directory or ".", f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        _unlink_quietly(tmp)


def read_bounded(path: str, limit: int) -> bytes:
    """Read a regular file of at most `limit` bytes without following a final symlink.

    Raises FileNotFoundError, FileTooLarge or NotARegularFile; never reads more than
    `limit + 1` bytes, so a 50 MB file costs no more than a small one.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise NotARegularFile(path, "a symlink") from None
        if exc.errno == 21:  # EISDIR
            raise NotARegularFile(path, "a directory") from None
        raise
    try:
        import stat

        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a special file"
            raise NotARegularFile(path, kind)
        if st.st_size > limit:
            raise FileTooLarge(path, st.st_size, limit)
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:  # grew while we read it
            raise FileTooLarge(path, len(data), limit)
        return data
    finally:
        os.close(fd)


def read_json_bounded(path: str, limit: int = 1 << 20) -> Any:
    """Parsed JSON from a bounded read; ValueError (with the path) on garbage."""
    # jsonfast, not json: json's import (re, enum) cost every `task ready` its time, to read
    # artifact manifests that are mostly not there; its errors are json's own
    from comm_node_tui.protocol import jsonfast as json

    raw = read_bounded(path, limit)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def append_line(path: str, line: str) -> None:
    """Append one line with a single O_APPEND write, so concurrent writers never interleave."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
