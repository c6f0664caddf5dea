"""Lock acquire with 1,000 locks held, in process (target: p99 at most 1 ms).

Builds a table of 1,000 locks held by 20 domains of one repository (files, directory globs
and extension globs, the mix agents use), then times `LockTable.conflicts` + `add` for new
requests: the decision the coordinator makes under its flock. The file snapshot write is
timed separately (it is IO, one atomic write per request).
Usage: python bench/locks_acquire.py [REQUESTS]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time

from common import machine, median, pct

from comm_node_tui.coordination.locks import Lock, LockTable
from comm_node_tui.protocol.globs import Glob


def pattern(rng: random.Random, i: int) -> str:
    d = f"src/mod{i % 97}"
    kind = i % 5
    if kind == 0:
        return f"{d}/**"
    if kind == 1:
        return f"{d}/*.py"
    return f"{d}/sub{i % 7}/file{i}.py"


def main() -> None:
    n_req = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = random.Random(7)
    base = "/work/repo"
    holders = [f"d{i:02d}" for i in range(20)]
    table = LockTable()
    far = time.time() + 3600
    i = 0
    while table.count < 1000:
        g = Glob(base, pattern(rng, i))
        holder = holders[i % 20]
        if table.conflicts(holder, g, True) is None:
            table.add(Lock(holder, g.pattern, g, True, far))
        i += 1
    times, granted = [], 0
    for j in range(n_req):
        holder = holders[rng.randrange(20)]
        g = Glob(base, f"src/mod{rng.randrange(120)}/sub{rng.randrange(9)}/new{j}.py")
        t0 = time.perf_counter()
        if table.conflicts(holder, g, True) is None:
            lock = Lock(holder, g.pattern, g, True, far)
            table.add(lock)
            granted += 1
        times.append(time.perf_counter() - t0)
        if table.count > 1000:
            table.remove(lock)  # keep 1,000 held
    with tempfile.TemporaryDirectory() as tmp:
        from comm_node_tui.coordination.store import CoordStore

        store = CoordStore(tmp)
        writes = []
        for _ in range(50):
            t0 = time.perf_counter()
            store.write("locks.json", table.to_json())
            writes.append(time.perf_counter() - t0)
    full = coordinator_round_trip()
    us = [t * 1e6 for t in times]
    print(f"machine: {machine()}")
    print(
        f"1,000 locks held by 20 domains; {n_req} requests ({granted} granted, "
        f"{n_req - granted} conflicts)"
    )
    print(
        f"decision (conflict check + add): p50 {median(us):.0f} us, p99 {pct(us, 99):.0f} us, "
        f"max {max(us):.0f} us"
    )
    print(f"snapshot write of 1,000 locks: median {median(writes) * 1000:.1f} ms")
    print(
        f"whole Coordinator.acquire (flock, load 1,000 from locks.json, decide, write): "
        f"median {median(full) * 1000:.1f} ms, p90 {pct(full, 90) * 1000:.1f} ms"
    )


def coordinator_round_trip() -> list[float]:
    """What one `comm-node lock acquire` pays after Python start-up."""
    from pathlib import Path

    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.workspace.discovery import load_workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "repo").mkdir()
        doms = "".join(
            f'[[domains]]\nname = "d{i:02d}"\npath = "repo"\nscope = ["src/**"]\n'
            for i in range(20)
        )
        (root / "comm-node.toml").write_text('[project]\nname = "bench"\n' + doms)
        ws = load_workspace(str(root))
        c = Coordinator(ws)
        for i in range(1000):
            c.acquire(ws.domains[f"d{i % 20:02d}"], [f"src/mod{i % 97}/s{i % 7}/f{i}.py"], ttl=3600)
        out = []
        for j in range(40):
            t0 = time.perf_counter()
            c.acquire(ws.domains["d00"], [f"src/new/x{j}.py"], ttl=3600)
            out.append(time.perf_counter() - t0)
            c.release("d00", [f"src/new/x{j}.py"])
        return out


if __name__ == "__main__":
    main()
