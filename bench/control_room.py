"""The control room under load: N agents, 100 tasks and 5,000 events per agent (50 agents:
5,000 tasks, 250,000 events; 200 agents: 20,000 tasks, 1,000,000 events).

Measures, with the engine in-process (or, with --viewer, while `comm-node serve` holds the
workspace in another process and the room only reads the files): time until every agent's
row shows (the rows come before the tasks are loaded), time to the first full frame (every
agent row and the task tree filled), a status.json change until its row shows it (p95
target: 100 ms), resident memory (peak, and now at the first frame and after idle), and CPU
while nothing changes (target: under 2 % of a core).

Usage: python bench/control_room.py [--agents 200] [--changes 40] [--idle 20] [--viewer]
                                    [--second-start]   (an engine held the workspace before)
       python bench/control_room.py --curve [--sizes 25,50,100,200]   (a table, both modes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct

os.environ.setdefault("COMM_NODE_TMUX_SOCKET", f"cn-bench-room-{os.getpid()}")
TASKS_PER_AGENT = 100
EVENTS_PER_AGENT = 5_000


def names_for(agents: int) -> list[str]:
    return [f"agent{i:03d}" for i in range(agents)]


def build(root: Path, agents: int) -> None:
    names = names_for(agents)
    parts = ['[project]\nname = "bench"\n[tasks]\nsource = "native"\n']
    beat = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    for n in names:
        (root / n / ".comm-node").mkdir(parents=True)
        parts.append(f'[[domains]]\nname = "{n}"\npath = "{n}"\n')
        (root / n / ".comm-node" / "status.json").write_text(
            json.dumps(
                {"state": "busy", "task": "T1", "progress": "working", "last_heartbeat": beat}
            )
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    with open(root / "tasks.toml", "w") as fh:
        for i in range(agents * TASKS_PER_AGENT):
            deps = f'depends_on = ["T{i - 1}", "T{i // 2}"]\n' if i > 1 else ""
            fh.write(
                f'[[tasks]]\nid = "T{i}"\ntitle = "task number {i}"\n'
                f'domain = "{names[i % agents]}"\n{deps}'
            )
    state = root / ".comm-node"
    state.mkdir()
    # Written as text (json.dumps per line took most of the setup at 1,000,000 events).
    line = (
        '{"ts": "2026-11-21T06:00:00.000Z", "type": "message.routed", "level": "info", '
        '"agent": "%s", "msg": "event %d", "data": {}}\n'
    )
    with open(state / "events.jsonl", "w") as fh:
        for start in range(0, agents * EVENTS_PER_AGENT, 10_000):
            stop = min(start + 10_000, agents * EVENTS_PER_AGENT)
            fh.write("".join(line % (names[i % agents], i) for i in range(start, stop)))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_now_mb() -> float:
    """Resident memory now (VmRSS), beside the peak (ru_maxrss): a peak while loading
    differs from what the room holds afterwards."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def phase(name: str) -> None:
    """Where the run is, on stderr (to attach a profiler to one phase: py-spy --pid)."""
    print(f"phase: {name} pid {os.getpid()}", file=sys.stderr, flush=True)


def hold_engine(root: Path) -> subprocess.Popen:
    """`comm-node serve` in another process: the room started after it is a viewer."""
    from comm_node_tui.engine.pidlock import holder_pid
    from comm_node_tui.workspace.discovery import load_workspace

    proc = subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "--workspace", str(root), "serve", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lock = load_workspace(str(root)).paths.engine_lock
    deadline = time.monotonic() + 120
    while holder_pid(lock) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("comm-node serve did not take the workspace")
        time.sleep(0.1)
    return proc


def start_once(root: Path) -> None:
    """A second start: an engine has held this workspace before (`comm-node serve` until it
    took the workspace, then stopped), so its task cache, directories and registries exist."""
    proc = hold_engine(root)
    proc.terminate()
    proc.wait(timeout=60)


async def measure(
    agents: int, changes: int, idle_s: float, viewer: bool, second: bool = False
) -> dict:
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.tui.app import ControlRoom
    from comm_node_tui.workspace.discovery import load_workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        build(root, agents)
        os.environ["CLAUDE_CONFIG_DIR"] = str(Path(tmp) / "claude")
        if second:
            start_once(root)
        engine = hold_engine(root) if viewer else None
        try:
            ws = load_workspace(str(root))
            names = names_for(agents)
            t0, c_start = time.perf_counter(), cpu()
            app = ControlRoom(ws)
            async with app.run_test(size=(200, 60)):
                table = app.query_one("#agents")
                tree = app.query_one("#tasks").tree
                while table.row_count < agents:
                    await asyncio.sleep(0.01)
                rows_shown = time.perf_counter() - t0  # every agent's row (tasks may follow)
                rows_cpu = cpu() - c_start
                while not (table.row_count == agents and len(tree.root.children) > 0):
                    await asyncio.sleep(0.01)
                first_frame = time.perf_counter() - t0
                first_cpu = cpu() - c_start  # the wall time is the machine's load too
                rss_first = rss_now_mb()
                phase("changes")
                await asyncio.sleep(2.0)
                lat = []
                for i in range(changes):
                    name = names[i % agents]
                    text = f"progress {i}"
                    t1 = time.perf_counter()
                    update_status(ws.domains[name].paths.status, name, progress=text)
                    while text not in str(table.cell(name, "Progress")):
                        await asyncio.sleep(0.002)
                    lat.append(time.perf_counter() - t1)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(3.0)
                phase("idle")
                c0, w0 = cpu(), time.perf_counter()
                await asyncio.sleep(idle_s)
                idle = (cpu() - c0) / (time.perf_counter() - w0)
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                rss_end = rss_now_mb()
                mode = "viewer" if app.bridge.viewer_of else "engine in-process"
        finally:
            if engine is not None:
                engine.terminate()
                engine.wait(timeout=30)
    return {
        "agents": agents,
        "tasks": agents * TASKS_PER_AGENT,
        "events": agents * EVENTS_PER_AGENT,
        "mode": mode,
        "start": "second" if second else "first",
        "rows_s": rows_shown,
        "rows_cpu_s": rows_cpu,
        "first_frame_s": first_frame,
        "first_frame_cpu_s": first_cpu,
        "median_ms": median(lat) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "max_ms": max(lat) * 1000,
        "changes": changes,
        "rss_mb": rss_mb,
        "rss_first_mb": rss_first,
        "rss_end_mb": rss_end,
        "idle_pct": idle * 100,
        "idle_s": idle_s,
    }


def report(r: dict) -> None:
    print(
        f"{r['agents']} agents, {r['tasks']:,} tasks, {r['events']:,} events; "
        f"{r['mode']}; {r['start']} start; 200x60 terminal"
    )
    print(f"every agent's row: {r['rows_s']:.2f} s ({r['rows_cpu_s']:.2f} s of CPU)")
    print(f"first full frame: {r['first_frame_s']:.2f} s ({r['first_frame_cpu_s']:.2f} s of CPU)")
    print(
        f"status.json change -> row shows it: median {r['median_ms']:.0f} ms, "
        f"p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms ({r['changes']} changes)"
    )
    print(
        f"resident memory (max RSS): {r['rss_mb']:.0f} MB (at the first frame "
        f"{r['rss_first_mb']:.0f} MB, after idle {r['rss_end_mb']:.0f} MB)"
    )
    print(f"CPU while nothing changes: {r['idle_pct']:.1f} % of one core ({r['idle_s']:.0f} s)")


def curve(sizes: list[int], changes: int, idle_s: float) -> None:
    """Each size and mode in a fresh process (max RSS is per process)."""
    rows = []
    for viewer in (False, True):
        for n in sizes:
            cmd = [sys.executable, __file__, "--agents", str(n), "--changes", str(changes)]
            cmd += ["--idle", str(idle_s), "--json"] + (["--viewer"] if viewer else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"done: {n} agents{' (viewer)' if viewer else ''}", file=sys.stderr)
    print(f"machine: {machine()}")
    head = ("agents", "tasks", "events", "mode", "rows (CPU)", "full frame (CPU)")
    print("| " + " | ".join([*head, "row p95 (median)", "idle CPU", "RSS"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['agents']} | {r['tasks']:,} | {r['events']:,} | {r['mode']} | "
            f"{r['rows_s']:.2f} s ({r['rows_cpu_s']:.2f}) | "
            f"{r['first_frame_s']:.2f} s ({r['first_frame_cpu_s']:.2f}) | "
            f"{r['p95_ms']:.0f} ms ({r['median_ms']:.0f}) | "
            f"{r['idle_pct']:.1f} % | {r['rss_mb']:.0f} MB |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--changes", type=int, default=40)
    p.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured")
    p.add_argument("--viewer", action="store_true", help="another process holds the engine")
    p.add_argument("--json", action="store_true", help="one JSON line of results")
    p.add_argument(
        "--second-start", action="store_true", help="an engine held the workspace once before"
    )
    p.add_argument("--curve", action="store_true", help="every size of --sizes, both modes")
    p.add_argument("--sizes", default="25,50,100,200")
    args = p.parse_args()
    if args.curve:
        curve([int(s) for s in args.sizes.split(",")], args.changes, args.idle)
        return
    r = asyncio.run(
        measure(args.agents, args.changes, args.idle, args.viewer, args.second_start)
    )
    if args.json:
        print(json.dumps(r))
    else:
        print(f"machine: {machine()}")
        report(r)


if __name__ == "__main__":
    main()
