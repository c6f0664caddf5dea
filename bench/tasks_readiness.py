"""Load and readiness of 10,000 generated tasks (target, issue 22: at most 100 ms), and of
the real Beads exports in ../shared/data/beads/ when present, with their ready counts.

Each run starts with the collector emptied (gc.collect) and times, in this order:
- judged: the export loaded and its readiness computed with the collector paused throughout,
  as the engine does it (Coordinator._load_tasks: one `Uncollected` region);
- pass: what the collector then spends on the objects that load made on their way to the
  oldest generation, one pass over the young and middle ones (gc.collect(1)); a process pays
  it (twice, as the objects age) unless `Uncollected` put them in the oldest generation at
  once (since 2026-11-22) or froze them (the engine's first two big loads);
- full: one full pass (gc.collect()), which walks them there in either case (with the rest
  of the process: compare old and new, not the absolute figure);
- free: the tasks and their readiness released (the engine's old view, when a new one
  replaces it);
- as before: the same load with readiness computed after the collector resumed, as this
  bench measured until 2026-11-22 (its first pass over the load falls inside readiness).
Reports medians of wall and CPU time (CPU is steadier on a shared machine).

Usage: python bench/tasks_readiness.py [TASKS] [REPEATS] [--sizes] [--native] [--before DIR]
  --sizes: the growth table: 1,000, 5,000, 10,000 and 20,000 tasks.
  --native: a native tasks.toml instead (TASKS defaults to 20,000): an engine's first start,
    the start that writes the task cache, and a second start.
  --before DIR: also time an older comm_node_tui/coordination/tasks.py (DIR holds the
    package, e.g. `git archive <commit> comm_node_tui | tar -x -C DIR`), alternating with
    this one in the same process, and print the ratios new / old.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from common import machine, median

from comm_node_tui.coordination import tasks as current

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "beads"
DOMAINS = {f"d{i}" for i in range(5)}


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


def load_older(directory: str) -> ModuleType:
    """An older checkout's tasks.py as a module of its own, beside the current one (it
    imports only the standard library and comm_node_tui.protocol.jsonfast)."""
    path = Path(directory) / "comm_node_tui" / "coordination" / "tasks.py"
    spec = importlib.util.spec_from_file_location("tasks_before", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Clock:
    """Wall and CPU seconds since the last lap."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def run(mod: ModuleType, path: Path) -> dict[str, tuple[float, float] | int]:
    """One measured load of `path` with module `mod` (see the docstring for the phases)."""
    gc.collect()
    clock = Clock()
    with mod.Uncollected():
        tasks, _ = mod.load_beads_jsonl(str(path), DOMAINS)
        r = mod.Readiness(tasks)
    judged = clock.lap()
    gc.collect(1)
    passed = clock.lap()
    gc.collect()
    full = clock.lap()
    n, ready = len(tasks), len(r.ready)
    del tasks, r
    freed = clock.lap()
    gc.collect()
    clock.lap()
    tasks, _ = mod.load_beads_jsonl(str(path), DOMAINS)
    r = mod.Readiness(tasks)
    before = clock.lap()
    del tasks, r
    return {"judged": judged, "pass": passed, "full": full, "free": freed, "as before": before,
            "n": n, "ready": ready}  # fmt: skip


PHASES = ("judged", "pass", "full", "free", "as before")


def ms(runs: list[dict], phase: str, cpu: bool = False) -> float:
    return median([r[phase][1 if cpu else 0] * 1000 for r in runs])


def table(sizes: list[int], repeats: int, older: ModuleType | None) -> None:
    print("| tasks | ready | code | judged wall (min) | judged cpu | pass cpu | full pass cpu "
          "| free cpu | as before: wall (min) | as before: cpu |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "issues.jsonl"
            generate(path, n)
            mods = {"new": current} if older is None else {"old": older, "new": current}
            runs: dict[str, list[dict]] = {k: [] for k in mods}
            for _ in range(repeats):  # alternating, so both see the same load
                for name, mod in mods.items():
                    runs[name].append(run(mod, path))
        for name, rs in runs.items():
            judged = [r["judged"][0] * 1000 for r in rs]
            before = [r["as before"][0] * 1000 for r in rs]
            print(
                f"| {rs[0]['n']:,} | {rs[0]['ready']:,} | {name} | {median(judged):.0f} ms "
                f"({min(judged):.0f}) | {ms(rs, 'judged', True):.0f} ms "
                f"| {ms(rs, 'pass', True):.1f} ms | {ms(rs, 'full', True):.1f} ms "
                f"| {ms(rs, 'free', True):.1f} ms "
                f"| {median(before):.0f} ms ({min(before):.0f}) "
                f"| {ms(rs, 'as before', True):.0f} ms |"
            )
        if older is not None:
            ratios = [
                f"{p} {ms(runs['new'], p, True) / max(ms(runs['old'], p, True), 1e-3):.2f}"
                for p in PHASES
            ]
            print(f"| {n:,} | | new / old (cpu) | {'; '.join(ratios)} | | | | | | |")
    for f in sorted(SHARED.glob("*.jsonl")) if SHARED.is_dir() else []:
        mods = {"new": current} if older is None else {"old": older, "new": current}
        for name, mod in mods.items():
            rs = [run(mod, f) for _ in range(repeats)]
            print(
                f"{f.name} ({name}): {rs[0]['n']} tasks, {rs[0]['ready']} ready, judged median "
                f"{ms(rs, 'judged'):.1f} ms (cpu {ms(rs, 'judged', True):.1f}), as before "
                f"{ms(rs, 'as before'):.1f} ms (cpu {ms(rs, 'as before', True):.1f})"
            )


def native_table(n: int, repeats: int, older: ModuleType | None) -> None:
    """load_native_cached of a tasks.toml of `n` tasks of the room bench's shape (200
    domains, two dependencies each): as an engine's first start finds it (changed a moment
    ago: parsed, not cached), when it writes the cache (parsed, rows written), and on a
    second start (read from the cache). CPU medians, old and new alternating."""
    names = [f"d{i:03d}" for i in range(200)]
    mods = {"new": current} if older is None else {"old": older, "new": current}
    cpu: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path, state = Path(tmp) / "tasks.toml", Path(tmp) / "state"
        with open(path, "w") as fh:
            for i in range(n):
                deps = f'depends_on = ["T{i - 1}", "T{i // 2}"]\n' if i > 1 else ""
                fh.write(
                    f'[[tasks]]\nid = "T{i}"\ntitle = "task number {i}"\n'
                    f'domain = "{names[i % 200]}"\n{deps}'
                )
        now = time.time_ns()
        for _ in range(repeats):
            for name, mod in mods.items():
                for start, age in (("first", 0), ("cache written", 60), ("second", None)):
                    if age is not None:  # mtime `age` seconds ago, no cache yet
                        os.utime(path, ns=(now, now - age * 1_000_000_000))
                        (state / mod.CACHE_FILE).unlink(missing_ok=True)
                    gc.collect()
                    clock = Clock()
                    with mod.Uncollected():
                        found, _ = mod.load_native_cached(str(path), set(names), str(state))
                    cpu.setdefault((start, name), []).append(clock.lap()[1] * 1000)
                    assert len(found) == n
                    del found
    print(f"\nnative tasks.toml, {n:,} tasks: load_native_cached, CPU medians of {repeats}")
    print("| start | " + " | ".join(mods) + (" | new / old |" if older else " |"))
    print("| --- " * (len(mods) + 1 + (1 if older else 0)) + "|")
    for start in ("first", "cache written", "second"):
        ms_ = [median(cpu[(start, name)]) for name in mods]
        cells = " | ".join(f"{m:.0f} ms" for m in ms_)
        print(f"| {start} | {cells}" + (f" | {ms_[1] / ms_[0]:.2f} |" if older else " |"))


def main() -> None:
    argv = sys.argv[1:]
    older = None
    if "--before" in argv:
        at = argv.index("--before")
        older = load_older(argv[at + 1])
        del argv[at : at + 2]
    args = [a for a in argv if not a.startswith("--")]
    sizes = [int(args[0])] if args else [10_000]
    if "--sizes" in argv:
        sizes = [1_000, 5_000, 10_000, 20_000]
    repeats = int(args[1]) if len(args) > 1 else 7
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    clock = Clock()
    try:  # imported here, so no run below pays it: the first big load of a process does
        import orjson  # noqa: F401

        spent = clock.lap()
        print(
            f"orjson: imported in {spent[1] * 1000:.1f} ms of CPU (with what it imports), then "
            f"used for every export (a process without it uses it from "
            f"{current.ORJSON_BYTES // 2**20} MB)"
        )
    except ImportError:
        print("orjson: not installed (json reads every line)")
    if "--native" in argv:
        native_table(int(args[0]) if args else 20_000, repeats, older)
    else:
        table(sizes, repeats, older)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
