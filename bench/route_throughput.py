"""Routing throughput with 50 domains (target, issue 22: at least 5,000 messages/s).

Writes N messages (point to point; or with one in ten a broadcast) into the outboxes of 50
domains, then times the engine routing all of them: parse, validate, ledger append, an
atomic write per delivered copy, archive move, event append, budget files. Repeats and
reports the median, of the wall time and of the CPU time (this process: the engine runs in
it): messages per CPU second is what the router could do on a disk that kept up.
Usage: python bench/route_throughput.py [MESSAGES] [REPEATS] [--sizes]
  --sizes: the growth table: 5, 50, 200 and 500 domains, point to point and broadcast.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median

from comm_node_tui.engine.engine import Engine
from comm_node_tui.protocol.messages import new_message_id, render
from comm_node_tui.workspace.discovery import load_workspace


def one_run(n: int, broadcast_every: int, tmp: str, domains: int = 50) -> tuple[float, int, float]:
    """(wall seconds, delivered copies, cpu seconds) of routing n messages."""
    root = Path(tmp)
    names = make_workspace(root, domains)
    boxes = []
    for name in names:
        box = root / name / ".comm-node" / "outbox"
        box.mkdir(parents=True)
        boxes.append(box)
    old = time.time() - 60

    for i in range(n):
        s = i % domains
        to = (
            "*"
            if broadcast_every and i % broadcast_every == 0
            else names[(s + 1 + i % 7) % domains]
        )
        if to == names[s]:
            to = names[(s + 1) % domains]
        mid = new_message_id()
        meta = {"id": mid, "from": names[s], "to": [to], "type": "info", "task": f"T{i % 40}"}
        p = boxes[s] / f"{mid}.md"
        p.write_text(render(meta, f"message {i}: " + "lorem ipsum dolor sit amet " * 4))
        os.utime(p, (old, old))
    eng = Engine(load_workspace(str(root)))
    # Let the setup's writes reach the disk so they do not compete with the timed part.
    os.sync()
    time.sleep(0.5)
    t0, c0 = time.perf_counter(), time.process_time()
    eng.start()  # start() routes the whole backlog before it returns
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    copies = sum(
        len(os.listdir(root / name / ".comm-node" / "inbox")) - 1 for name in names
    )  # -1: the read/ folder
    assert eng.router.routed == n, (eng.router.routed, n)
    eng.stop()
    return elapsed, copies, cpu


def table(n: int, repeats: int, domains: int, every: int) -> tuple[float, float, float, float]:
    """Medians: (messages/s, messages per CPU second, copies/s, min messages/s)."""
    # Each run's tree is deleted only at the end: deleting tens of thousands of files (with
    # online discard on this machine's disk) slows the next run's file creation.
    with tempfile.TemporaryDirectory() as keep:
        results = [one_run(n, every, tempfile.mkdtemp(dir=keep), domains) for _ in range(repeats)]
    rates = [n / e for e, _c, _cpu in results]
    return (
        median(rates),
        median([n / cpu for _e, _c, cpu in results]),
        median([c / e for e, c, _cpu in results]),
        min(rates),
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 10_000
    repeats = int(args[1]) if len(args) > 1 else 5
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    sizes = (5, 50, 200, 500) if "--sizes" in sys.argv else (50,)
    print("| domains | messages | kind | msg/s (median, min) | msg per cpu-second | copies/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for domains in sizes:
        for label, every in (("point to point", 0), ("one in ten broadcast", 10)):
            rate, per_cpu, copies, low = table(n, repeats, domains, every)
            print(
                f"| {domains} | {n:,} | {label} | {rate:,.0f} ({low:,.0f}) | {per_cpu:,.0f} "
                f"| {copies:,.0f} |"
            )


if __name__ == "__main__":
    main()
