"""The in-memory conflict check (integration/conflicts.py) on a repository of 5,000 files
with 5 domains on worktrees: each domain has committed edits on its branch and uncommitted
edits in its working tree, and two pairs edit the same lines (2 conflicting pairs, the
other 8 merge cleanly). Time per pass, three ways:
- cold: a new checker each pass (every pair merged again: the engine's first pass);
- warm: the same checker, nothing changed (snapshots taken again, merges from the cache:
  the engine's pass while agents think);
- one edit: the same checker, one domain changed one file since the last pass (its 4 pairs
  merged again: the engine's pass while agents work).
Usage: python bench/conflict_check.py [FILES] [REPEATS]
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct

DOMAINS = ("d0", "d1", "d2", "d3", "d4")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def generate(root: Path, n: int) -> Path:
    rng = random.Random(18)
    repo = root / "repo"
    for i in range(n):
        f = repo / f"pkg{i % 50:02d}" / f"m{i}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(f"value_{j} = {rng.randrange(1000)}\n" for j in range(40)))
    (repo / ".gitignore").write_text(".comm-node/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    parts = ['[project]\nname = "bench"\n']
    for k, d in enumerate(DOMAINS):
        wt = root / d
        git(repo, "worktree", "add", "-q", "-b", f"work-{d}", str(wt))
        # each domain: its own 20 files changed and committed, 5 more changed, not committed
        ids = [k * 1000 + 100 + j for j in range(25)]
        own = [wt / f"pkg{i % 50:02d}" / f"m{i}.py" for i in ids]
        for f in own[:20]:
            f.write_text(f.read_text().replace("value_3 =", f"value_3 = {k} +"))
        git(wt, "commit", "-qam", f"{d}'s work")
        for f in own[20:]:
            f.write_text(f.read_text() + f"extra_{k} = 1\n")
        parts.append(f'[[domains]]\nname = "{d}"\npath = "{d}"\n')
    # two overlapping edits: d0/d1 committed, d2/d3 one of them uncommitted
    shared = "pkg07/m4007.py"
    for d, how in (("d0", "commit"), ("d1", "commit"), ("d2", "commit"), ("d3", "dirty")):
        f = root / d / (shared if d in ("d0", "d1") else "pkg08/m4008.py")
        f.write_text(f.read_text().replace("value_5 =", f"value_5 = 7 * {d[1]} +"))
        if how == "commit":
            git(root / d, "commit", "-qam", "overlap")
    (root / "comm-node.toml").write_text("\n".join(parts))
    return repo


def timed(run, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return out


def line(name: str, times: list[float]) -> str:
    return (
        f"{name:<10} median {median(times) * 1000:7.0f} ms   p95 {pct(times, 95) * 1000:7.0f} ms"
        f"   (n={len(times)})"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    from comm_node_tui.integration.conflicts import ConflictChecker

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, n)
        domains = {d: str(root / d) for d in DOMAINS}
        first = ConflictChecker().run(domains)
        pairs = sorted({(c.a, c.b) for c in first.conflicts})
        assert not first.problems, first.problems

        cold = timed(lambda: ConflictChecker().run(domains), repeats)
        checker = ConflictChecker()
        checker.run(domains)
        warm = timed(lambda: checker.run(domains), repeats)
        edits = iter(range(10**6))

        def one_edit() -> None:
            f = root / "d4" / "pkg40" / f"m{4000 + 40}.py"
            f.write_text(f.read_text() + f"edit_{next(edits)} = 1\n")
            result = checker.run(domains)
            assert result.merged == 4, result.merged

        edited = timed(one_edit, repeats)
        print(machine())
        print(
            f"{n} files, {len(DOMAINS)} worktrees ({len(DOMAINS) * n} files on disk), "
            f"{first.pairs} pairs; conflicting pairs: {pairs}"
        )
        print(line("cold", cold))
        print(line("warm", warm))
        print(line("one edit", edited))


if __name__ == "__main__":
    main()
