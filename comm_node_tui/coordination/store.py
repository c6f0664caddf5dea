"""Coordination state shared by the engine and the agent CLI, under one flock.

Locks, task claims and budget grants must be decided atomically at the moment an agent asks
(`comm-node task claim` answers 0 or 3 at once, engine running or not). So the agent CLI and
the engine both change these files, each change inside an exclusive `flock` on
`<workspace>/.comm-node/coord.lock`, each file written atomically. This is the one place the
design relaxes "the engine alone writes central state" (docs/architecture.md says why).
A distributed backend would replace this class with compare-and-set on a key-value store.
"""

from __future__ import annotations

import os

from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir, exclusive_flock, read_bounded

TYPE_CHECKING = False  # annotations only
if TYPE_CHECKING:
    from types import TracebackType

MAX_STATE_BYTES = 64 * 1024 * 1024


class CoordStore:
    def __init__(self, state_dir: str) -> None:
        self.dir = state_dir
        self.lock_path = os.path.join(state_dir, "coord.lock")

    def locked(self, timeout_s: float = 10.0) -> _Held:
        """Hold the coordination lock (waits, with a timeout, for the other holder)."""
        return _Held(self, timeout_s)

    def read(self, name: str, default: object) -> object:
        """A JSON state file; `default` when missing; ValueError naming the file if garbage."""
        path = os.path.join(self.dir, name)
        try:
            raw = read_bounded(path, MAX_STATE_BYTES)
        except FileNotFoundError:
            return default
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueError(f"{path}: not valid JSON ({type(exc).__name__})") from None

    def write(self, name: str, data: object) -> None:
        atomic_write(
            # Compact on purpose: with `indent`, json falls back to its pure-Python encoder,
            # which made a 1,000-lock snapshot cost 15 ms.
            os.path.join(self.dir, name),
            json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n",
        )

    def mtime(self, name: str) -> float | None:
        try:
            return os.stat(os.path.join(self.dir, name)).st_mtime
        except OSError:
            return None


class _Held:
    """CoordStore.locked's `with` block: a class, not contextlib (whose import, with
    collections and functools, was a quarter of the SessionStart hand-off's start-up)."""

    def __init__(self, store: CoordStore, timeout_s: float) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.flock: exclusive_flock | None = None

    def __enter__(self) -> CoordStore:
        from comm_node_tui.errors import CommNodeError

        store, timeout_s = self.store, self.timeout_s
        ensure_dir(store.dir)

        def held() -> CommNodeError:
            return CommNodeError(
                f"{store.lock_path}: still held by another comm-node after {timeout_s:g} s"
            )

        flock = exclusive_flock(store.lock_path, timeout_s, held)
        flock.__enter__()
        self.flock = flock
        return store

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        flock, self.flock = self.flock, None
        if flock is not None:
            flock.__exit__(kind, exc, tb)
