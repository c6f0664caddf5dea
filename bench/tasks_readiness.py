"""Load and readiness of 10,000 generated tasks (target, issue 22: at most 100 ms), and of
the real Beads exports in ../shared/data/beads/ when present, with their ready counts.
Reports the median wall time and the median CPU time (steadier on a shared machine).
Usage: python bench/tasks_readiness.py [TASKS] [REPEATS] [--sizes]
  --sizes: the growth table: 1,000, 5,000, 10,000 and 20,000 tasks.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median

from comm_node_tui.coordination.tasks import Readiness, load_beads_jsonl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "beads"


def generate(path: Path, n: int) -> None:
    rng = random.Random(11)
    statuses = ["open"] * 6 + ["closed"] * 3 + ["in_progress"]
    with open(path, "w") as fh:
        for i in range(n):
            deps = []
            if i and i % 10:
                for t in rng.sample(range(max(0, i - 50), i), k=min(i, rng.randrange(0, 3))):
                    deps.append(
                        {
                            "issue_id": f"t-{i}",
                            "depends_on_id": f"t-{t}",
                            "type": "blocks",
                            "metadata": "{}",
                        }
                    )
            if i % 10 and i > 10:
                deps.append(
                    {
                        "issue_id": f"t-{i}",
                        "depends_on_id": f"t-{(i // 10) * 10}",
                        "type": "parent-child",
                        "metadata": "{}",
                    }
                )
            fh.write(
                json.dumps(
                    {
                        "id": f"t-{i}",
                        "title": f"task {i}",
                        "status": rng.choice(statuses),
                        "priority": rng.randrange(5),
                        "issue_type": "epic" if i % 10 == 0 else "task",
                        "labels": [f"domain:d{i % 5}"],
                        "dependencies": deps,
                        "description": "x" * 200,
                        "ephemeral": i % 17 == 0,
                    }
                )
                + "\n"
            )


def timed(path: Path) -> tuple[float, int, int, float]:
    """(wall seconds, tasks, ready, cpu seconds) of one load + readiness."""
    t0, c0 = time.perf_counter(), time.process_time()
    tasks, _ = load_beads_jsonl(str(path), {f"d{i}" for i in range(5)})
    r = Readiness(tasks)
    return time.perf_counter() - t0, len(tasks), len(r.ready), time.process_time() - c0


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sizes = [int(args[0])] if args else [10_000]
    if "--sizes" in sys.argv:
        sizes = [1_000, 5_000, 10_000, 20_000]
    repeats = int(args[1]) if len(args) > 1 else 7
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("| tasks | ready | wall median (min, max) | cpu median |")
    print("| --- | --- | --- | --- |")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "issues.jsonl"
            generate(path, n)
            runs = [timed(path) for _ in range(repeats)]
        ms = [r[0] * 1000 for r in runs]
        cpu = median([r[3] * 1000 for r in runs])
        print(
            f"| {runs[0][1]:,} generated | {runs[0][2]:,} | {median(ms):.0f} ms "
            f"({min(ms):.0f}, {max(ms):.0f}) | {cpu:.0f} ms |"
        )
    for f in sorted(SHARED.glob("*.jsonl")) if SHARED.is_dir() else []:
        runs = [timed(f) for _ in range(repeats)]
        ms = [r[0] * 1000 for r in runs]
        print(f"{f.name}: {runs[0][1]} tasks, {runs[0][2]} ready, median {median(ms):.1f} ms")


if __name__ == "__main__":
    main()
