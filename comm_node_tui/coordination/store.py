"""Coordination state shared by the engine and the agent CLI, under one flock.

Locks, task claims and budget grants must be decided atomically at the moment an agent asks
(`comm-node task claim` answers 0 or 3 at once, engine running or not). So the agent CLI and
the engine both change these files, each change inside an exclusive `flock` on
`<workspace>/.comm-node/coord.lock`, each file written atomically. This is the one place the
design relaxes "the engine alone writes central state" (docs/architecture.md says why).
A distributed backend would replace this class with compare-and-set on a key-value store.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir, exclusive_flock, read_bounded

MAX_STATE_BYTES = 64 * 1024 * 1024


class CoordStore:
    def __init__(self, state_dir: str) -> None:
        self.dir = state_dir
        self.lock_path = os.path.join(state_dir, "coord.lock")

    @contextlib.contextmanager
    def locked(self, timeout_s: float = 10.0) -> Iterator[CoordStore]:
        """Hold the coordination lock (waits, with a timeout, for the other holder)."""
        from comm_node_tui.errors import CommNodeError

        ensure_dir(self.dir)

        def held() -> CommNodeError:
            return CommNodeError(
                f"{self.lock_path}: still held by another comm-node after {timeout_s:g} s"
            )

        with exclusive_flock(self.lock_path, timeout_s, held):
            yield self

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
