"""Merge queue throughput: N domains, each a git worktree on its own branch with a few
commits of its own files, all queued, then one pass (`MergeQueue.run_pass`, as the engine
runs it) with `verify = ["true"]`. Reported: entries per minute, and each entry's time
(scratch worktree reset, the --no-ff merge, the scope check, verify, the merge commit and
the fast-forward of the integration branch), median and p95.

Usage: .venv/bin/python bench/merge_queue.py [--domains 10] [--commits 3] [--files 200]
                                             [--json OUT]
`--files`: files already in the repository (a bigger tree makes checkout and reset cost more).
Everything lives in a temporary directory; the repository's git identity is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.integration.queue import MergeQueue
from comm_node_tui.workspace.discovery import load_workspace


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def project(root: Path, domains: int, commits: int, files: int) -> list[str]:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@localhost")
    git(root, "config", "commit.gpgsign", "false")
    (root / ".gitignore").write_text(".comm-node/\n")
    for i in range(files):
        path = root / "base" / f"f{i // 50:03d}" / f"file{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n" * 20)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    names = [f"d{i:02d}" for i in range(domains)]
    config = ['[project]\nname = "bench"\n[boundaries]\ncheck_interval_s = 0\n']
    for name in names:
        git(root, "worktree", "add", "-q", "-b", f"comm-node/{name}", name)
        for c in range(commits):
            (root / name / name).mkdir(exist_ok=True)
            (root / name / name / f"part{c}.txt").write_text(f"{name} commit {c}\n" * 10)
            git(root / name, "add", ".")
            git(root / name, "commit", "-q", "-m", f"{name} {c}")
        config.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\nscope = ["{name}/**"]\n'
            'verify = ["true"]\n'
        )
    (root / "comm-node.toml").write_text("\n".join(config))
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=10)
    ap.add_argument("--commits", type=int, default=3)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cn-merge-bench-") as tmp:
        root = Path(tmp) / "proj"
        t0 = time.perf_counter()
        names = project(root, args.domains, args.commits, args.files)
        setup_s = time.perf_counter() - t0
        queue = MergeQueue(Coordinator(load_workspace(str(root))))
        for name in names:
            queue.enqueue(name)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        done = queue.run_pass() or []
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
    landed = [e for e in done if e["state"] == "landed"]
    per = [e["seconds"] for e in done]
    out = {
        "machine": machine(),
        "load": [round(load_before[0], 1), round(load_after[0], 1)],
        "domains": args.domains,
        "commits_per_branch": args.commits,
        "files_in_repo": args.files,
        "setup_s": round(setup_s, 1),
        "landed": len(landed),
        "not_landed": [(e["domain"], e["state"], e.get("reason")) for e in done if e not in landed],
        "wall_s": round(wall, 2),
        "entries_per_minute": round(len(done) / wall * 60, 1) if wall else None,
        "entry_median_ms": round(median(per) * 1000, 1) if per else None,
        "entry_p95_ms": round(pct(per, 95) * 1000, 1) if per else None,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if len(landed) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
