"""The verify gate's overhead beyond its commands: `comm-node task done` with the domain's
`verify = ["true"]` against the same command with no gate, alternating, medians.

The command itself (`/bin/sh -c true`, timed alone the same way) is subtracted, so what is left
is the gate's own cost: the process group, the pipe reading, the second pass under the
coordination lock, the attempt written to the overlay. Each run claims a fresh task first
(not timed). Usage: python bench/verify_gate.py [RUNS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct


def workspace(root: Path, runs: int, verify: str) -> Path:
    root.mkdir(parents=True)
    (root / "d00").mkdir()
    (root / "comm-node.toml").write_text(
        '[project]\nname = "bench"\n[agents]\nbudget_tokens = 0\n[tasks]\nsource = "native"\n'
        f'[[domains]]\nname = "d00"\npath = "d00"\n{verify}\n'
    )
    (root / "tasks.toml").write_text(
        "".join(f'[[tasks]]\nid = "T{i}"\ntitle = "t{i}"\ndomain = "d00"\n' for i in range(runs))
    )
    return root / "d00"


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def in_process(gated: Path, plain: Path, first: int, runs: int) -> tuple[list, list, list]:
    """Coordinator.done() itself, no CLI start-up: the gate's cost with less noise."""
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.workspace.discovery import load_workspace

    coords = {cwd: Coordinator(load_workspace(str(cwd.parent))) for cwd in (gated, plain)}
    a, b, c = [], [], []
    for i in range(first, first + runs):
        for coord in coords.values():
            coord.claim(coord.ws.domains["d00"], f"T{i}")
        for cwd, out in ((plain, a), (gated, b)):
            coord = coords[cwd]
            t0 = time.perf_counter()
            coord.done(coord.ws.domains["d00"], f"T{i}", [])
            out.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"], cwd=gated, check=True)
        c.append(time.perf_counter() - t0)
    return a, b, c


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    script = Path(sys.executable).parent / "comm-node"
    if not script.exists():
        sys.exit(f"{script} not found: run with the project's .venv/bin/python")
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "comm_node_tui"), quiet=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["COMM_NODE_DOMAIN"] = "d00"
    with tempfile.TemporaryDirectory() as tmp:
        gated = workspace(Path(tmp) / "gated", 2 * runs + 1, 'verify = ["true"]')
        plain = workspace(Path(tmp) / "plain", 2 * runs + 1, "")
        for cwd in (gated, plain):  # warm-up: the config cache, the first overlay write
            subprocess.run([str(script), "task", "claim", "T0"], cwd=cwd, env=env, check=True)
            timed([str(script), "task", "done", "T0"], cwd, env)
        a, b, c = [], [], []
        for i in range(1, runs + 1):
            for cwd in (gated, plain):
                subprocess.run(
                    [str(script), "task", "claim", f"T{i}"],
                    cwd=cwd,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            a.append(timed([str(script), "task", "done", f"T{i}"], plain, env))
            b.append(timed([str(script), "task", "done", f"T{i}"], gated, env))
            c.append(timed(["/bin/sh", "-c", "true"], gated, env))
        ia, ib, ic = in_process(gated, plain, runs + 1, runs)
    ma, mb, mc = median(a), median(b), median(c)
    print(f"machine: {machine()}")
    print(f"runs: {runs} each, alternating")
    print(f"task done, no gate       : median {ma * 1000:.1f} ms, p90 {pct(a, 90) * 1000:.1f} ms")
    print(f"task done, verify [true] : median {mb * 1000:.1f} ms, p90 {pct(b, 90) * 1000:.1f} ms")
    print(f"/bin/sh -c true alone    : median {mc * 1000:.1f} ms")
    print(f"gate overhead beyond the command: {(mb - ma - mc) * 1000:.1f} ms (medians)")
    ma, mb, mc = median(ia), median(ib), median(ic)
    print("in process (Coordinator.done, no CLI start-up):")
    print(
        f"  no gate {ma * 1000:.2f} ms, verify [true] {mb * 1000:.2f} ms, sh alone {mc * 1000:.2f}"
    )
    print(f"  gate overhead beyond the command: {(mb - ma - mc) * 1000:.2f} ms (medians)")


if __name__ == "__main__":
    main()
