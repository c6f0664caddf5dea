"""Locks, task claims and budget grants decided by compare-and-set on a JetStream bucket.

The coordination code reads a state file, decides, writes it back, all inside
`store.locked()` (coordination/store.py). ClusterStore keeps that shape and makes it hold
across machines:
  - `locked()` takes the local flock (agents on this machine queue there, not on NATS), then
    a lease on the bucket's `_mutex` key, won only by `create` (absent) or by a
    revision-checked `update` of an expired lease: one holder in the whole cluster;
  - a shared file read inside it comes from the bucket, with its revision; the write goes
    back with `update(last=revision)`. So even a holder whose lease ran out (paused, partitioned)
    cannot overwrite a newer decision: its write fails and nothing is granted twice;
  - each successful write is mirrored into the local file, which every reader outside
    `locked()` (the room, the task view's stamp) keeps using; the engine's relay mirrors the
    other machines' writes too (relay.py).
Files that are not shared (the engine's own agents.json, usage.json, ...) stay local.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

from comm_node_tui.cluster.client import ClusterClient, ClusterUnavailable
from comm_node_tui.cluster.names import Names
from comm_node_tui.errors import CommNodeError
from comm_node_tui.workspace.model import Workspace

MUTEX = "_mutex"
LEASE_S = 10.0  # a holder that died frees the cluster this long after it took the lease
LEASE_WAIT_S = 30.0  # how long a decision waits its turn: every holder in line pays round trips
# to the server (one per read or write), and a queue of agents on several loaded machines
# took more than 10 s in a test run at load 21 (9 processes, 2 cores)


class StaleDecision(CommNodeError):
    """Someone else changed the shared state between our read and our write."""


class ClusterStore:
    """CoordStore's interface (locked, read, write, mtime, dir, lock_path) over a bucket."""

    def __init__(
        self, local: Any, ws: Workspace, shared: frozenset[str], client: ClusterClient | None = None
    ) -> None:
        self.local = local
        self.dir = local.dir
        self.lock_path = local.lock_path
        self.shared = shared
        self.settings = ws.settings.cluster
        self.bucket = Names(ws.project).coord_bucket
        self._client = client
        self._held: dict[str, int] | None = None  # name -> revision read, while locked
        self.me = f"{self.settings.node or socket.gethostname()}:{os.getpid()}"

    @property
    def held(self) -> bool:
        """Inside locked(): reads of shared files come from the bucket."""
        return self._held is not None

    @property
    def client(self) -> ClusterClient:
        if self._client is None:
            self._client = ClusterClient(self.settings, f"comm-node-cli-{self.me}")
        return self._client

    # ---- the cluster-wide lease ---------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, timeout_s: float = LEASE_WAIT_S) -> Iterator[ClusterStore]:
        with self.local.locked(timeout_s):
            lease = self._acquire(timeout_s)
            self._held = {}
            try:
                yield self
            finally:
                self._held = None
                self._release(lease)

    def _acquire(self, timeout_s: float) -> int:
        client = self.client  # first: it imports nats the lean way (cluster/client.py)
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        deadline = time.monotonic() + timeout_s
        wait = 0.002
        while True:
            value = json.dumps({"by": self.me, "until": time.time() + LEASE_S}).encode()

            async def take(value: bytes = value) -> int:
                kv = await client.kv(self.bucket)
                try:
                    return int(await kv.create(MUTEX, value))
                except KeyWrongLastSequenceError:
                    pass
                try:
                    entry = await kv.get(MUTEX)
                except KeyNotFoundError:
                    return 0  # released between our create and get: try again at once
                held = _lease_until(entry.value)
                if held is not None and held > time.time():
                    return -1
                try:  # an expired (or unreadable) lease: take it over, if still that one
                    return int(await kv.update(MUTEX, value, last=entry.revision))
                except KeyWrongLastSequenceError:
                    return 0

            got = client.call(take)
            if got > 0:
                return got
            if time.monotonic() > deadline:
                raise CommNodeError(
                    f"cluster: the coordination lease in {self.bucket} is still held by "
                    f"another engine or agent after {timeout_s:g} s"
                )
            if got < 0:  # held by a live holder: back off (2 ms doubling to 50 ms)
                time.sleep(wait)
                wait = min(wait * 2, 0.05)

    def _release(self, revision: int) -> None:
        async def drop() -> None:
            kv = await self.client.kv(self.bucket)
            # only our own lease: one taken over after it expired is someone else's now
            with contextlib.suppress(Exception):
                await kv.delete(MUTEX, last=revision)

        with contextlib.suppress(ClusterUnavailable):
            self.client.call(drop)

    # ---- shared files -----------------------------------------------------------------------
    def read(self, name: str, default: object) -> object:
        if self._held is None or name not in self.shared:
            return self.local.read(name, default)
        from nats.js.errors import KeyNotFoundError

        async def get() -> tuple[bytes | None, int]:
            kv = await self.client.kv(self.bucket)
            try:
                entry = await kv.get(name)
            except KeyNotFoundError:
                return None, 0
            return entry.value, int(entry.revision)

        raw, revision = self.client.call(get)
        self._held[name] = revision
        if not raw:
            return default
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueError(
                f"nats bucket {self.bucket} key {name}: not valid JSON ({type(exc).__name__})"
            ) from None

    def write(self, name: str, data: object) -> None:
        if name not in self.shared:
            self.local.write(name, data)
            return
        if self._held is None:
            with self.locked():
                self.read(name, None)
                self.write(name, data)
            return
        if name not in self._held:
            self.read(name, None)  # a blind write still checks against the current revision
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        last = self._held[name]

        from nats.js.errors import KeyWrongLastSequenceError

        async def put() -> int:
            kv = await self.client.kv(self.bucket)
            # last=0 means "must not exist yet": two first writers cannot both win either
            return int(await kv.update(name, raw, last=last))

        try:
            self._held[name] = self.client.call(put)
        except KeyWrongLastSequenceError:
            raise StaleDecision(
                f"cluster: {name} changed in {self.bucket} while this decision was made "
                "(the lease ran out); nothing was written, try again"
            ) from None
        self.local.write(name, data)  # the mirror readers outside locked() use

    def mtime(self, name: str) -> float | None:
        return self.local.mtime(name)

    def close(self) -> None:
        """The connection, if one was made (the engine's stop; a CLI process just exits)."""
        if self._client is not None:
            self._client.close()


def _lease_until(raw: bytes | None) -> float | None:
    try:
        return float(json.loads(raw or b"")["until"])
    except (ValueError, KeyError, TypeError):
        return None
