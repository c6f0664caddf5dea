"""`Engine.start` at 25/50/100/200 domains, and its registry.json writes alone (issue 22).

Every domain's registry.json lists all its peers: N files of N entries. Each size runs in a
fresh process on a new workspace (the first start writes every registry; a second start
finds them unchanged), CPU time (`process_time`) of `Engine.start` and of
`DomainMonitor.write_registries`, medians of RUNS processes.

Usage: python bench/engine_start.py [RUNS] [--before DIR]
  --before DIR: also run an older checkout's comm_node_tui (DIR holds it, e.g. from
  `git archive OLD comm_node_tui | tar -x -C DIR`) through PYTHONPATH, side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, make_workspace, median

SIZES = (25, 50, 100, 200)


def one(n: int) -> None:
    """In this process: a new workspace of `n` domains; print the CPU seconds as JSON."""
    import time

    if os.environ.get("PYTHONPATH"):
        # --before: common.py put this checkout first on sys.path; the old one must win
        sys.path.remove(str(Path(__file__).resolve().parent.parent))

    from comm_node_tui.engine.engine import Engine
    from comm_node_tui.workspace.discovery import load_workspace

    with tempfile.TemporaryDirectory() as tmp:
        make_workspace(Path(tmp), n)
        ws = load_workspace(tmp)
        eng = Engine(ws)
        t0 = time.process_time()
        eng.start()
        first = time.process_time() - t0
        t0 = time.process_time()
        eng.domains.write_registries()  # every file already as it should be
        unchanged = time.process_time() - t0
        for dom in ws.domains.values():
            os.unlink(dom.paths.registry)
        t0 = time.process_time()
        eng.domains.write_registries()  # every file new
        fresh = time.process_time() - t0
        eng.stop()
        import comm_node_tui

        assert os.environ.get("PYTHONPATH", "") in comm_node_tui.__file__
    print(json.dumps({"start": first, "write_new": fresh, "write_same": unchanged}))


def main() -> None:
    if "--one" in sys.argv:
        one(int(sys.argv[sys.argv.index("--one") + 1]))
        return
    args = sys.argv[1:]
    before = None
    if "--before" in args:
        i = args.index("--before")
        before = args[i + 1]
        del args[i : i + 2]
    runs = int(args[0]) if args else 5
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    variants = {"after": env}
    if before:
        variants["before"] = {**env, "PYTHONPATH": before}
    here = Path(__file__).resolve()
    results: dict[tuple[str, int], list[dict]] = {}
    for _ in range(runs):
        for n in SIZES:
            for name, venv in variants.items():
                out = subprocess.run(
                    [sys.executable, str(here), "--one", str(n)],
                    env=venv,
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=here.parent,
                )
                results.setdefault((name, n), []).append(json.loads(out.stdout))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; {runs} runs each")
    print("| domains | code | Engine.start cpu | registries, all new | registries, unchanged |")
    print("| --- | --- | --- | --- | --- |")
    for n in SIZES:
        for name in variants:
            rs = results[(name, n)]
            keys = ("start", "write_new", "write_same")
            cells = [median([r[k] for r in rs]) * 1000 for k in keys]
            print(f"| {n} | {name} | " + " | ".join(f"{c:.0f} ms" for c in cells) + " |")


if __name__ == "__main__":
    main()
