"""Routing throughput with 50 domains (target: at least 2,000 messages/s).

Writes N messages (point to point; or with one in ten a broadcast) into the outboxes of 50
domains, then times the engine routing all of them: parse, validate, ledger append, an
atomic write per delivered copy, archive move, event append, budget files. Repeats and
reports the median. Usage: python bench/route_throughput.py [MESSAGES] [REPEATS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median

from comm_node_tui.engine.engine import Engine
from comm_node_tui.protocol.messages import new_message_id, render
from comm_node_tui.workspace.discovery import load_workspace


def one_run(n: int, broadcast_every: int, tmp: str) -> tuple[float, int]:
    root = Path(tmp)
    names = make_workspace(root, 50)
    boxes = []
    for name in names:
        box = root / name / ".comm-node" / "outbox"
        box.mkdir(parents=True)
        boxes.append(box)
    old = time.time() - 60
    import os

    for i in range(n):
        s = i % 50
        to = "*" if broadcast_every and i % broadcast_every == 0 else names[(s + 1 + i % 7) % 50]
        if to == names[s]:
            to = names[(s + 1) % 50]
        mid = new_message_id()
        meta = {"id": mid, "from": names[s], "to": [to], "type": "info", "task": f"T{i % 40}"}
        p = boxes[s] / f"{mid}.md"
        p.write_text(render(meta, f"message {i}: " + "lorem ipsum dolor sit amet " * 4))
        os.utime(p, (old, old))
    eng = Engine(load_workspace(str(root)))
    # Let the setup's writes reach the disk so they do not compete with the timed part.
    os.sync()
    time.sleep(0.5)
    t0 = time.perf_counter()
    eng.start()  # start() routes the whole backlog before it returns
    elapsed = time.perf_counter() - t0
    copies = sum(
        len(os.listdir(root / name / ".comm-node" / "inbox")) - 1 for name in names
    )  # -1: the read/ folder
    assert eng.router.routed == n, (eng.router.routed, n)
    eng.stop()
    return elapsed, copies


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"machine: {machine()}")
    for label, every in (("point to point", 0), ("one in ten broadcast to all 49", 10)):
        rates, copy_rates = [], []
        # Each run's tree is deleted only at the end: deleting tens of thousands of files
        # (with online discard on this machine's disk) slows the next run's file creation.
        with tempfile.TemporaryDirectory() as keep:
            results = [one_run(n, every, tempfile.mkdtemp(dir=keep)) for _ in range(repeats)]
        for elapsed, copies in results:
            rates.append(n / elapsed)
            copy_rates.append(copies / elapsed)
        print(f"{label}: {n} messages, 50 domains, {repeats} runs")
        print(
            f"  messages/s: median {median(rates):,.0f} "
            f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
        )
        print(f"  delivered copies/s: median {median(copy_rates):,.0f}")


if __name__ == "__main__":
    main()
