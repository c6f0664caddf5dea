"""One engine per workspace: an flock on `.comm-node/engine.pid`, released by the kernel
even when the engine is killed with SIGKILL, so there is never a stale lock to clean up."""

from __future__ import annotations

import fcntl
import os

from comm_node_tui.errors import CommNodeError


class WorkspaceBusy(CommNodeError):
    def __init__(self, path: str, pid: str) -> None:
        self.pid = pid
        super().__init__(f"the workspace is held by another comm-node engine (pid {pid}; {path})")


class EngineLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder_pid(self.path) or "unknown"
            os.close(fd)
            raise WorkspaceBusy(self.path, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder_pid(path: str) -> str | None:
    """The pid of the engine holding the workspace, or None when none does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode(errors="replace").strip()
            return text or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
