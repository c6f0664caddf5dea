"""Advisory file locks: a table of gitignore-style patterns held by domains.

Two locks conflict when their patterns overlap on the workspace-absolute path and either is
exclusive; a domain may lock only inside its scope. The table is plain data (JSON in
`.comm-node/locks.json`); `LockTable` indexes it by literal path prefix in a trie, so a new
request is compared only with locks on the same branch of the tree.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from comm_node_tui.protocol.globs import Glob, validate_pattern
from comm_node_tui.protocol.messages import now_iso

LOCKS_FILE = "locks.json"
DEFAULT_TTL_S = 15 * 60
MAX_TTL_S = 24 * 3600


class Lock:
    __slots__ = ("acquired_at", "exclusive", "expires", "glob", "holder", "pattern", "reason")

    def __init__(
        self,
        holder: str,
        pattern: str,
        glob: Glob,
        exclusive: bool,
        expires: float,
        reason: str = "",
        acquired_at: str | None = None,
    ) -> None:
        self.holder = holder
        self.pattern = pattern
        self.glob = glob
        self.exclusive = exclusive
        self.expires = expires
        self.reason = reason
        self.acquired_at = acquired_at or now_iso()

    def to_json(self) -> dict:
        return {
            "pattern": self.pattern,
            "holder": self.holder,
            "exclusive": self.exclusive,
            "expires_at": now_iso(self.expires),
            "expires": self.expires,
            "acquired_at": self.acquired_at,
            "reason": self.reason,
            "path": self.glob.text,
            "regex": self.glob.regex(),
            "prefix": self.index_prefix(),
        }

    def index_prefix(self) -> str:
        """The literal leading segments every path this lock matches starts with, as the
        edit guard's key spells them (`ws/dom/src`; store.py's locks index files the lock
        under it). Taken from the glob, the same base and segments its regex is compiled
        from; a pattern with a backslash (an escape to pathspec, a separator to the glob)
        is filed under its domain's directory alone."""
        g = self.glob
        segs = g.segs[: g.base_len] if "\\" in self.pattern else g.literal_prefix
        return "/".join(segs)

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{self.holder} holds '{self.pattern}' ({kind})"


class Conflict:
    def __init__(self, lock: Lock) -> None:
        self.lock = lock


class Outside:
    def __init__(self, pattern: str, owner: str | None) -> None:
        self.pattern = pattern
        self.owner = owner


class _Node:
    __slots__ = ("children", "locks")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.locks: list[Lock] = []


class LockTable:
    def __init__(self) -> None:
        self.root = _Node()
        self.count = 0

    # ---- index --------------------------------------------------------------------------
    def _node(self, prefix: tuple[str, ...], create: bool) -> _Node | None:
        node = self.root
        for seg in prefix:
            nxt = node.children.get(seg)
            if nxt is None:
                if not create:
                    return None
                nxt = node.children[seg] = _Node()
            node = nxt
        return node

    def add(self, lock: Lock) -> None:
        node = self._node(lock.glob.literal_prefix, True)
        assert node is not None  # create=True makes the whole path
        node.locks.append(lock)
        self.count += 1

    def remove(self, lock: Lock) -> None:
        node = self._node(lock.glob.literal_prefix, False)
        if node is not None and lock in node.locks:
            node.locks.remove(lock)
            self.count -= 1

    def all(self) -> list[Lock]:
        out: list[Lock] = []
        stack = [self.root]
        while stack:
            node = stack.pop()
            out.extend(node.locks)
            stack.extend(node.children.values())
        return out

    def candidates(self, glob: Glob) -> Iterable[Lock]:
        """Locks whose literal prefix is on the same branch as `glob`'s."""
        node = self.root
        yield from node.locks
        for seg in glob.literal_prefix:
            nxt = node.children.get(seg)
            if nxt is None:
                return
            node = nxt
            yield from node.locks
        stack = list(node.children.values())
        while stack:
            n = stack.pop()
            yield from n.locks
            stack.extend(n.children.values())

    # ---- queries ------------------------------------------------------------------------
    def conflicts(self, holder: str, glob: Glob, exclusive: bool) -> Lock | None:
        for lock in self.candidates(glob):
            if lock.holder == holder or not (exclusive or lock.exclusive):
                continue
            if lock.glob.overlaps(glob):
                return lock
        return None

    def own(self, holder: str, pattern: str) -> Lock | None:
        for lock in self.all():
            if lock.holder == holder and lock.pattern == pattern:
                return lock
        return None

    def expire(self, now: float | None = None) -> list[Lock]:
        now = time.time() if now is None else now
        gone = [lock for lock in self.all() if lock.expires <= now]
        for lock in gone:
            self.remove(lock)
        return gone

    # ---- persistence --------------------------------------------------------------------
    def to_json(self) -> dict:
        locks = sorted(self.all(), key=lambda lk: (lk.holder, lk.pattern))
        return {"version": 1, "updated": now_iso(), "locks": [lk.to_json() for lk in locks]}

    @classmethod
    def from_json(cls, data: object, domain_paths: dict[str, str]) -> tuple[LockTable, list[str]]:
        """The table, and one line for each record that could not be restored."""
        table = cls()
        problems: list[str] = []
        records = data.get("locks", []) if isinstance(data, dict) else []
        for i, rec in enumerate(records if isinstance(records, list) else []):
            try:
                holder, pattern = rec["holder"], rec["pattern"]
                if holder not in domain_paths:
                    problems.append(f"locks[{i}]: unknown holder '{holder}' dropped")
                    continue
                glob = Glob(domain_paths[holder], pattern)
                table.add(
                    Lock(
                        holder,
                        pattern,
                        glob,
                        bool(rec.get("exclusive", True)),
                        float(rec["expires"]),
                        str(rec.get("reason", "")),
                        rec.get("acquired_at"),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"locks[{i}]: unreadable ({type(exc).__name__}) dropped")
        return table, problems


def check_pattern(pattern: str) -> str | None:
    return validate_pattern(pattern)


def ttl_seconds(ttl: float | None) -> float:
    if ttl is None:
        return DEFAULT_TTL_S
    if ttl <= 0:
        raise ValueError("--ttl must be positive")
    return min(float(ttl), MAX_TTL_S)
