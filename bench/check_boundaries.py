"""`comm-node check` on a generated repository of 5,000 source files (Python, TypeScript and
Rust, five scoped domains in one git repository, ~4 imports per file, some crossing domains):
the whole CLI run (process start, git, parse, resolve, judge), and the engine's re-check
with its parse cache warm.
Usage: python bench/check_boundaries.py [FILES] [REPEATS]
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median

DOMAINS = ("core", "api", "web", "jobs", "engine-rs")


def generate(root: Path, n: int) -> None:
    rng = random.Random(5)
    per = n // len(DOMAINS)
    parts = ['[project]\nname = "bench"\n']
    for d in DOMAINS:
        rule = 'forbidden_imports = ["jobs"]' if d == "api" else ""
        parts.append(f'[[domains]]\nname = "{d}"\npath = "."\nscope = ["{d}/**"]\n{rule}\n')
    (root / "comm-node.toml").write_text("\n".join(parts))
    (root / ".gitignore").write_text(".comm-node/\n")
    py_domains = ("core", "api", "jobs")
    for d in DOMAINS:
        base = root / d
        if d == "engine-rs":
            (base / "src").mkdir(parents=True)
            (base / "Cargo.toml").write_text('[package]\nname = "engine_rs"\nversion = "0.1.0"\n')
            mods = [f"m{i}" for i in range(per)]
            (base / "src" / "lib.rs").write_text("".join(f"pub mod {m};\n" for m in mods))
            for i, m in enumerate(mods):
                uses = [f"use crate::{rng.choice(mods)}::f;" for _ in range(3)]
                (base / "src" / f"{m}.rs").write_text(
                    "\n".join(uses) + f"\nuse std::fmt;\npub fn f() -> u32 {{ {i} }}\n"
                )
        elif d == "web":
            (base / "src").mkdir(parents=True)
            for i in range(per):
                lines = [f'import {{ a{j} }} from "./c{j}";' for j in rng.sample(range(per), 3)] + [
                    'import React from "react";',
                    f"export const a{i} = {i};",
                ]
                (base / "src" / f"c{i}.ts").write_text("\n".join(lines) + "\n")
        else:
            pkg = base  # the domain's directory is its package: `import api.m3`
            pkg.mkdir(parents=True)
            (pkg / "__init__.py").write_text("")
            for i in range(per - 1):
                lines = [f"from {d} import m{j}" for j in rng.sample(range(per - 1), 2)]
                other = rng.choice(py_domains)
                lines.append(f"import {other}.m{rng.randrange(per - 1)}")
                lines += ["import os", "import json", f"X = {i}"]
                (pkg / f"m{i}.py").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "x"],
        check=True,
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        generate(root, n)
        cli_times, report = [], {}
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "comm_node_tui", "check", "--json"],
                cwd=root,
                capture_output=True,
                text=True,
            )
            cli_times.append(time.perf_counter() - t0)
            report = json.loads(r.stdout)
        from comm_node_tui.boundaries.check import ImportCache, run_check
        from comm_node_tui.workspace.discovery import load_workspace

        ws = load_workspace(str(root))
        cache = ImportCache()
        run_check(ws, cache=cache)
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run_check(ws, cache=cache)
            warm.append(time.perf_counter() - t0)
        files = report["files_checked"]
        cli = median(cli_times)
        print(machine())
        print(
            f"files checked {files}, imports {report['imports_checked']}, "
            f"violations {len(report['violations'])}, cross-domain edges {len(report['edges'])}"
        )
        print(
            f"comm-node check (whole CLI run): median {cli * 1000:.0f} ms "
            f"(min {min(cli_times) * 1000:.0f}) = {files / cli:,.0f} files/s"
        )
        print(f"engine re-check, parse cache warm: median {median(warm) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
