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

from comm_node_tui.protocol import guarded
from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir, exclusive_flock, read_bounded

TYPE_CHECKING = False  # annotations only
if TYPE_CHECKING:
    from types import TracebackType

MAX_STATE_BYTES = 64 * 1024 * 1024
LOCKS_FILE = "locks.json"  # coordination/locks.py (not imported: it brings the globs)
LOCKS_INDEX = "locks.index"


class CoordStore:
    def __init__(self, state_dir: str) -> None:
        self.dir = state_dir
        self.lock_path = os.path.join(state_dir, "coord.lock")

    def locked(self, timeout_s: float = 10.0) -> _Held:
        """Hold the coordination lock (waits, with a timeout, for the other holder)."""
        return _Held(self, timeout_s)

    def read(self, name: str, default: object) -> object:
        """A JSON state file; `default` when missing; ValueError naming the file if garbage.
        A guarded name (budget-grants.json) is read from guarded/ (protocol/guarded.py)."""
        path = guarded.source(self.dir, name)
        try:
            raw = read_bounded(path, MAX_STATE_BYTES)
        except FileNotFoundError:
            return default
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueError(f"{path}: not valid JSON ({type(exc).__name__})") from None

    def write(self, name: str, data: object) -> None:
        index = name == LOCKS_FILE and isinstance(data, dict)
        if index:
            assert isinstance(data, dict)
            # first, so the guard reads it from the file's first bytes
            data = {"gen": os.urandom(8).hex(), **{k: v for k, v in data.items() if k != "gen"}}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
        # Compact on purpose: with `indent`, json falls back to its pure-Python encoder,
        # which made a 1,000-lock snapshot cost 15 ms.
        guarded.write(self.dir, name, text)
        if index:
            assert isinstance(data, dict)
            write_locks_index(self.dir, data, len(text.encode("utf-8")))

    def mtime(self, name: str) -> float | None:
        try:
            return os.stat(guarded.source(self.dir, name)).st_mtime
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


# ---- the locks index: the edit guard's view of locks.json -------------------------------
# The PreToolUse guard runs on every Edit/Write and asks one question: does another domain's
# lock cover this path? Parsing all of locks.json for it grew with the locks held (3.3x
# `python -c pass` at 5,000 locks; issue 22). So every write of locks.json through this
# store (always under the coordination flock) also writes locks.index: a header line naming
# the locks.json it was made from (the random "gen" written as that file's first key, and its
# size), then one line per literal path prefix (Lock.index_prefix) holding the records filed
# under it with their place in locks.json. The guard reads only the lines of its path's own
# prefixes (hooks/guard.py); a locks.json written any other way (by hand, by the cluster's
# mirror, by an older comm-node) has no matching gen, and the guard reads it whole as before.


def write_locks_index(state_dir: str, data: dict, size: int) -> None:
    groups: dict[str | None, list] = {}
    records = data.get("locks")
    for i, rec in enumerate(records if isinstance(records, list) else []):
        prefix = rec.get("prefix") if isinstance(rec, dict) else None
        groups.setdefault(prefix if isinstance(prefix, str) else None, []).append([i, rec])

    def enc(obj: object) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    # the header, the records filed under no prefix (always read), then one line per prefix
    # sorted by its bytes: the guard finds its few lines by binary search
    head = [enc({"gen": data["gen"], "size": size}), enc(groups.pop(None, []))]
    lines = sorted(f"[{enc(prefix)},{enc(recs)}]".encode() for prefix, recs in groups.items())
    text = b"\n".join([*(h.encode() for h in head), *lines]) + b"\n"
    try:
        atomic_write(os.path.join(state_dir, LOCKS_INDEX), text)
    except OSError:
        # an old index names the old gen, so the guard would not use it; remove it anyway
        try:
            os.unlink(os.path.join(state_dir, LOCKS_INDEX))
        except OSError:
            pass


def locks_for(state_dir: str, key: str) -> list[dict] | None:
    """The records of locks.json that may cover `key` (a path without its leading slash),
    in their locks.json order, from locks.index; None when the index is not of the
    locks.json there now (then read that file whole)."""
    try:
        with open(os.path.join(state_dir, LOCKS_FILE), "rb") as fh:
            first = fh.read(64)
            size = os.fstat(fh.fileno()).st_size
        with open(os.path.join(state_dir, LOCKS_INDEX), "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if not first.startswith(b'{"gen":"'):
        return None
    gen = first[8 : first.find(b'"', 8)].decode("ascii", "replace")
    head_end = data.find(b"\n")
    loose_end = data.find(b"\n", head_end + 1)
    if head_end < 0 or loose_end < 0:
        return None
    try:
        meta = json.loads(data[:head_end])
        if meta["gen"] != gen or meta["size"] != size:
            return None
        found = list(json.loads(data[head_end + 1 : loose_end]))
        parts = key.split("/")
        for prefix in ["", *("/".join(parts[: n + 1]) for n in range(len(parts)))]:
            line = _index_line(
                data, loose_end + 1, b"[" + json.dumps(prefix, ensure_ascii=False).encode() + b","
            )
            if line is not None:
                found.extend(json.loads(line)[1])
        found.sort(key=lambda pair: pair[0])
        return [rec for _i, rec in found]
    except (ValueError, RecursionError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        return None


def _index_line(data: bytes, start: int, needle: bytes) -> bytes | None:
    """The line of `data` (sorted lines from `start` on) that begins with `needle`."""
    lo, hi = start, len(data)
    # lines starting before lo sort before needle; lines starting at hi or after, not
    while lo < hi:
        mid = (lo + hi) // 2
        s = data.rfind(b"\n", lo, mid)
        s = lo if s < 0 else s + 1  # the start of the line holding mid
        e = data.find(b"\n", s)
        e = len(data) if e < 0 else e
        if data[s : s + len(needle)] < needle:
            lo = e + 1
        else:
            hi = s
    if data[lo : lo + len(needle)] != needle:
        return None
    e = data.find(b"\n", lo)
    return data[lo : e if e >= 0 else len(data)]
