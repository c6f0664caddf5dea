"""The agent CLI's most frequent calls (`send`, `status set`, `inbox`, `task ready|list|show|
claim`, `lock acquire|list`, `read`, `status --json`; `inbox` through `python -m comm_node_tui`
for runpy's share) against `python3 -c pass` (target, issue 22: at most 2x).

Runs each command alternately with the baseline many times in a warm workspace (config cache
present), and reports medians of wall time and of CPU time (user + sys of the child: steadier
than the wall time on a shared machine) and their ratios. Usage: python bench/send_startup.py [RUNS]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median, pct


def timed(cmd: list[str], cwd: str, env: dict, rc: int = 0) -> tuple[float, float]:
    """(wall, cpu) seconds of one run, which must exit with RC."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != rc:
        sys.exit(f"{' '.join(cmd)}: exit {res.returncode}, expected {rc}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    bindir = Path(sys.executable).parent
    script = bindir / "comm-node"
    if not script.exists():
        sys.exit(
            f"{script} not found: install the project (./test does) and run with .venv/bin/python"
        )
    # A wheel install ships compiled bytecode; an editable one under PYTHONDONTWRITEBYTECODE
    # (set on some machines) would recompile every module on every run. Compile first so
    # the numbers are what an installed comm-node costs.
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "comm_node_tui"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        make_workspace(Path(tmp), 3)
        with open(os.path.join(tmp, "comm-node.toml"), "a") as fh:
            fh.write('\n[tasks]\nsource = "native"\n')
        tasks = Path(tmp) / "tasks.toml"
        tasks.write_text(
            '[[tasks]]\nid = "T-1"\ntitle = "one"\ndomain = "d00"\n'
            '[[tasks]]\nid = "T-2"\ntitle = "two"\ndomain = "d00"\ndepends_on = ["T-1"]\n'
        )
        # older than the task cache's racy window (coordination/tasks.py RACY_NS), as a
        # source is between edits: otherwise every call would parse it again
        st = tasks.stat()
        os.utime(tasks, ns=(st.st_atime_ns, st.st_mtime_ns - 60_000_000_000))
        cwd = os.path.join(tmp, "d00")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
        cn = str(script)
        # name -> (argv, exit code); each call can repeat (a claim or a lock of one's own
        # again is granted again; `read` of an unknown id is its one-line error, exit 1)
        calls: dict[str, tuple[list[str], int]] = {
            "send": ([cn, "send", "--to", "d01", "benchmark message"], 0),
            "status set": (
                [cn, "status", "set", "busy", "--task", "T-1", "--progress", "step 1"],
                0,
            ),
            "inbox": ([cn, "inbox", "--unread", "--json"], 0),
            "task ready": ([cn, "task", "ready", "--json"], 0),
            "task list": ([cn, "task", "list"], 0),
            "task show": ([cn, "task", "show", "T-2"], 0),
            "task claim": ([cn, "task", "claim", "T-1"], 0),
            "lock acquire": ([cn, "lock", "acquire", "src/**"], 0),
            "lock list": ([cn, "lock", "list", "--json"], 0),
            "read": ([cn, "read", "m-none"], 1),
            "status --json": ([cn, "status", "--json"], 0),
            "-m inbox": ([sys.executable, "-m", "comm_node_tui", "inbox", "--unread"], 0),
        }
        base = [sys.executable, "-c", "pass"]
        for cmd, rc in calls.values():
            timed(cmd, cwd, env, rc)  # builds the config cache, as any first call does
        a, ca = [], []
        got: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in calls}
        for _ in range(runs):
            for name, (cmd, rc) in calls.items():
                w, c = timed(base, cwd, env)
                a.append(w)
                ca.append(c)
                w, c = timed(cmd, cwd, env, rc)
                got[name][0].append(w)
                got[name][1].append(c)
    ma = median(a)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"runs: {runs} each, alternating with the baseline")
    print(
        f"{'python3 -c pass':<22}: median {ma * 1000:.1f} ms, p90 {pct(a, 90) * 1000:.1f} ms, "
        f"cpu {median(ca) * 1000:.1f} ms"
    )
    for name, (b, cb) in got.items():
        mb = median(b)
        print(
            f"{'comm-node ' + name:<22}: median {mb * 1000:.1f} ms, p90 "
            f"{pct(b, 90) * 1000:.1f} ms, cpu {median(cb) * 1000:.1f} ms; ratio wall "
            f"{mb / ma:.2f}x, cpu {median(cb) / median(ca):.2f}x (target <= 2x)"
        )


if __name__ == "__main__":
    main()
