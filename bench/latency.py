"""Outbox write to inbox delivery latency against a running engine (target: p95 <= 50 ms).

Starts `comm-node serve` as a real process on a 50-domain workspace, writes one message at a
time atomically into an outbox (as `comm-node send` does), and times until the copy appears
in the recipient's inbox (polled every 0.2 ms). Usage: python bench/latency.py [MESSAGES]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median, pct

from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.messages import new_message_id, render


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = make_workspace(root, 50)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "comm_node_tui", "serve", "-q", "-w", str(root)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            events = root / ".comm-node" / "events.jsonl"
            while not (events.exists() and "engine.started" in events.read_text()):
                time.sleep(0.05)
            time.sleep(0.5)
            lat = []
            for i in range(n):
                sender, rcpt = names[i % 50], names[(i + 7) % 50]
                mid = new_message_id()
                text = render(
                    {"id": mid, "from": sender, "to": [rcpt], "type": "info"}, f"latency probe {i}"
                )
                target = root / rcpt / ".comm-node" / "inbox" / f"{mid}.md"
                t0 = time.perf_counter()
                atomic_write(str(root / sender / ".comm-node" / "outbox" / f"{mid}.md"), text)
                while not target.exists():
                    time.sleep(0.0002)
                lat.append(time.perf_counter() - t0)
                time.sleep(0.01)  # messages arrive one by one, as agents send them
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ms = [x * 1000 for x in lat]
    print(f"machine: {machine()}")
    print(f"{n} messages, one at a time, 50 domains, engine in its own process")
    print(
        f"latency ms: p50 {median(ms):.1f}, p95 {pct(ms, 95):.1f}, p99 {pct(ms, 99):.1f}, "
        f"max {max(ms):.1f}"
    )


if __name__ == "__main__":
    main()
