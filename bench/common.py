"""Helpers shared by the benchmarks: a workspace of N domains and summary statistics."""

from __future__ import annotations

import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_workspace(root: Path, n_domains: int, budget: int = 0) -> list[str]:
    names = [f"d{i:02d}" for i in range(n_domains)]
    root.mkdir(parents=True, exist_ok=True)
    parts = [f'[project]\nname = "bench"\n[agents]\nbudget_tokens = {budget}\n']
    for name in names:
        (root / name).mkdir(exist_ok=True)
        parts.append(f'[[domains]]\nname = "{name}"\npath = "{name}"\n')
    (root / "comm-node.toml").write_text("\n".join(parts))
    return names


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine() -> str:
    import os

    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
