"""Routing throughput with 50 domains (target, issue 22: at least 5,000 messages/s).

Writes N messages (point to point; or with one in ten a broadcast) into the outboxes of 50
domains of a running engine, then times one routing pass over all of them (Engine.scan: parse,
validate, ledger append, an atomic write per delivered copy, archive move, event append,
budget files). Repeats and reports the median, of the wall time and of the CPU time (this
process: the engine runs in it): messages per CPU second is what the router could do on a
disk that kept up, and the share of it spent in the kernel (system time) is the file work.
Usage: python bench/route_throughput.py [MESSAGES] [REPEATS] [--sizes] [--with-start]
  --sizes: the growth table: 5, 50, 200 and 500 domains, point to point and broadcast.
  --with-start: time Engine.start routing the backlog instead (as before 2026-11-22): that
    adds the engine's start-up (every domain's registry.json, O(domains^2); the journal's
    compaction) to the routing.
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


def one_run(
    n: int, broadcast_every: int, tmp: str, domains: int = 50, with_start: bool = False
) -> tuple[float, int, float, float]:
    """(wall seconds, delivered copies, cpu seconds, system cpu seconds) of routing n messages."""
    root = Path(tmp)
    names = make_workspace(root, domains)
    boxes = []
    for name in names:
        box = root / name / ".comm-node" / "outbox"
        box.mkdir(parents=True)
        boxes.append(box)
    eng = Engine(load_workspace(str(root)))
    if not with_start:
        eng.start()  # nothing waits yet: the start-up is not routing
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
    # Let the setup's writes reach the disk so they do not compete with the timed part.
    os.sync()
    time.sleep(0.5)
    t0, c0, s0 = time.perf_counter(), time.process_time(), os.times().system
    if with_start:
        eng.start()  # start() routes the whole backlog before it returns
    else:
        eng.scan()  # one pass over every outbox, as the engine's rescan makes
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    system = os.times().system - s0
    copies = sum(
        len(os.listdir(root / name / ".comm-node" / "inbox")) - 1 for name in names
    )  # -1: the read/ folder
    assert eng.router.routed == n, (eng.router.routed, n)
    eng.stop()
    return elapsed, copies, cpu, system


def table(
    n: int, repeats: int, domains: int, every: int, with_start: bool = False
) -> tuple[float, float, float, float, float]:
    """Medians: (messages/s, messages per CPU second, copies/s, min messages/s, system share)."""
    # Each run's tree is deleted only at the end: deleting tens of thousands of files (with
    # online discard on this machine's disk) slows the next run's file creation.
    with tempfile.TemporaryDirectory() as keep:
        results = [
            one_run(n, every, tempfile.mkdtemp(dir=keep), domains, with_start)
            for _ in range(repeats)
        ]
    rates = [n / r[0] for r in results]
    return (
        median(rates),
        median([n / r[2] for r in results]),
        median([r[1] / r[0] for r in results]),
        min(rates),
        median([r[3] / r[2] for r in results]),
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 10_000
    repeats = int(args[1]) if len(args) > 1 else 5
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    sizes = (5, 50, 200, 500) if "--sizes" in sys.argv else (50,)
    with_start = "--with-start" in sys.argv
    # One short run first: the engine's lazy imports are paid once per process, not by
    # whichever measured run comes first.
    with tempfile.TemporaryDirectory() as warm:
        one_run(200, 0, warm, 5, with_start)
    print(
        "| domains | messages | kind | msg/s (median, min) | msg per cpu-second "
        "| of it in the kernel | copies/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for domains in sizes:
        for label, every in (("point to point", 0), ("one in ten broadcast", 10)):
            rate, per_cpu, copies, low, system = table(n, repeats, domains, every, with_start)
            print(
                f"| {domains} | {n:,} | {label} | {rate:,.0f} ({low:,.0f}) | {per_cpu:,.0f} "
                f"| {system:.0%} | {copies:,.0f} |",
                flush=True,
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
