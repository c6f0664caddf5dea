"""`comm-node send` wall time against `python3 -c pass` (target: at most 3x).

Runs both commands alternately many times in a warm workspace (config cache present),
and reports medians and their ratio. Usage: python bench/send_startup.py [RUNS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median, pct


def timed(cmd: list[str], cwd: str, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


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
        cwd = os.path.join(tmp, "d00")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
        send = [str(script), "send", "--to", "d01", "benchmark message"]
        base = [sys.executable, "-c", "pass"]
        timed(send, cwd, env)  # builds the config cache, as any first call does
        a, b = [], []
        for _ in range(runs):
            a.append(timed(base, cwd, env))
            b.append(timed(send, cwd, env))
    ma, mb = median(a), median(b)
    print(f"machine: {machine()}")
    print(f"runs: {runs} each, alternating")
    print(f"python3 -c pass : median {ma * 1000:.1f} ms, p90 {pct(a, 90) * 1000:.1f} ms")
    print(f"comm-node send  : median {mb * 1000:.1f} ms, p90 {pct(b, 90) * 1000:.1f} ms")
    print(f"ratio (medians) : {mb / ma:.2f}x  (target <= 3x)")


if __name__ == "__main__":
    main()
