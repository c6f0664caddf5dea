"""The control room under load: 50 agents, 5,000 tasks, 100,000 events.

Measures, with the engine in-process: time to the first full frame (every agent row and the
task tree filled), a status.json change until its row shows it (p95 target: 100 ms),
resident memory, and CPU while nothing changes (target: under 2 % of a core).
Usage: python bench/control_room.py [CHANGES]
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct

os.environ.setdefault("COMM_NODE_TMUX_SOCKET", f"cn-bench-room-{os.getpid()}")


def build(root: Path) -> None:
    names = [f"agent{i:02d}" for i in range(50)]
    parts = ['[project]\nname = "bench"\n[tasks]\nsource = "native"\n']
    for n in names:
        (root / n / ".comm-node").mkdir(parents=True)
        parts.append(f'[[domains]]\nname = "{n}"\npath = "{n}"\n')
        (root / n / ".comm-node" / "status.json").write_text(
            json.dumps(
                {
                    "state": "busy",
                    "task": "T1",
                    "progress": "working",
                    "last_heartbeat": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                }
            )
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    with open(root / "tasks.toml", "w") as fh:
        for i in range(5000):
            deps = f'depends_on = ["T{i - 1}", "T{i // 2}"]\n' if i > 1 else ""
            fh.write(
                f'[[tasks]]\nid = "T{i}"\ntitle = "task number {i}"\n'
                f'domain = "{names[i % 50]}"\n{deps}'
            )
    state = root / ".comm-node"
    state.mkdir()
    with open(state / "events.jsonl", "w") as fh:
        for i in range(100_000):
            fh.write(
                json.dumps(
                    {
                        "ts": "2026-11-21T06:00:00.000Z",
                        "type": "message.routed",
                        "level": "info",
                        "agent": names[i % 50],
                        "msg": f"event {i}",
                        "data": {},
                    }
                )
                + "\n"
            )


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main() -> None:
    changes = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.tui.app import ControlRoom
    from comm_node_tui.workspace.discovery import load_workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        build(root)
        os.environ["CLAUDE_CONFIG_DIR"] = str(Path(tmp) / "claude")
        ws = load_workspace(str(root))
        t0 = time.perf_counter()
        app = ControlRoom(ws)
        async with app.run_test(size=(200, 60)) as pilot:
            agents = app.query_one("#agents")
            tree = app.query_one("#tasks").tree
            while not (agents.row_count == 50 and len(tree.root.children) > 0):
                await pilot.pause(0.01)
            first_frame = time.perf_counter() - t0
            await pilot.pause(2.0)
            lat = []
            for i in range(changes):
                name = f"agent{i % 50:02d}"
                text = f"progress {i}"
                t1 = time.perf_counter()
                update_status(ws.domains[name].paths.status, name, state="busy", progress=text)
                while text not in str(agents.get_cell(name, "Progress")):
                    await asyncio.sleep(0.002)
                lat.append(time.perf_counter() - t1)
                await pilot.pause(0.05)
            await pilot.pause(3.0)
            c0, w0 = cpu(), time.perf_counter()
            await pilot.pause(20.0)
            idle = (cpu() - c0) / (time.perf_counter() - w0)
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {machine()}")
    print("50 agents, 5,000 tasks, 100,000 events; engine in-process; 200x60 terminal")
    print(f"first full frame: {first_frame:.2f} s")
    print(
        f"status.json change -> row shows it: median {median(lat) * 1000:.0f} ms, "
        f"p95 {pct(lat, 95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms ({changes} changes)"
    )
    print(f"resident memory (max RSS): {rss_mb:.0f} MB")
    print(f"CPU while nothing changes: {idle * 100:.1f} % of one core (20 s)")


if __name__ == "__main__":
    asyncio.run(main())
