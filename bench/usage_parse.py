"""Usage parse of ~100 MB of Claude Code transcripts: MB/s, and the totals compared with the
`ccusage` npm package on the same directory where it is available.

Transcripts are generated in the real line shapes (../shared/data/claude): user lines with
tool results of varying size, and each API response written as 1 to 3 assistant lines that
share message.id + requestId, the early ones with placeholder output_tokens = 1.
Usage: python bench/usage_parse.py [MB] [--ccusage PATH]   (or set CCUSAGE_BIN)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import machine, median

from comm_node_tui.usage.transcripts import UsageTracker, project_dir_name
from comm_node_tui.workspace.discovery import load_workspace


def generate(home: Path, cwd: Path, megabytes: int, rng: random.Random) -> dict:
    """Write transcripts; return the exact totals (final usage once per response)."""
    folder = home / "projects" / project_dir_name(str(cwd))
    folder.mkdir(parents=True)
    want = {"input": 0, "output": 0, "cache_write": 0, "cache_read": 0, "responses": 0}
    target = megabytes * 1024 * 1024
    written, session = 0, 0
    t = 1_795_000_000.0
    while written < target:
        session += 1
        sid = f"sess-{session:05d}"
        with open(folder / f"{sid}.jsonl", "w") as fh:
            for turn in range(rng.randrange(20, 80)):
                t += rng.uniform(1, 30)
                ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
                tool_out = "x" * rng.randrange(200, 20_000)
                fh.write(
                    json.dumps(
                        {
                            "parentUuid": None,
                            "isSidechain": False,
                            "userType": "external",
                            "cwd": str(cwd),
                            "sessionId": sid,
                            "version": "2.1.14",
                            "type": "user",
                            "message": {
                                "role": "user",
                                "content": [
                                    {
                                        "type": "tool_result",
                                        "tool_use_id": f"t{turn}",
                                        "content": tool_out,
                                    }
                                ],
                            },
                            "uuid": f"{sid}-u{turn}",
                            "timestamp": ts,
                        }
                    )
                    + "\n"
                )
                inp, cw, cr = rng.randrange(0, 5), rng.randrange(0, 4000), rng.randrange(0, 90000)
                out = rng.randrange(5, 2000)
                cw1h = cw // 4 if turn % 7 == 0 else 0
                lines = rng.randrange(1, 4)
                for k in range(lines):
                    final = k == lines - 1
                    usage = {
                        "input_tokens": inp,
                        "cache_creation_input_tokens": cw,
                        "cache_read_input_tokens": cr,
                        "cache_creation": {
                            "ephemeral_5m_input_tokens": cw - cw1h,
                            "ephemeral_1h_input_tokens": cw1h,
                        },
                        "output_tokens": out if final else 1,
                        "service_tier": "standard",
                    }
                    fh.write(
                        json.dumps(
                            {
                                "parentUuid": f"{sid}-u{turn}",
                                "isSidechain": False,
                                "userType": "external",
                                "cwd": str(cwd),
                                "sessionId": sid,
                                "version": "2.1.14",
                                "type": "assistant",
                                "message": {
                                    "model": "claude-sonnet-4-5-20250929",
                                    "id": f"msg_{sid}_{turn}",
                                    "type": "message",
                                    "role": "assistant",
                                    "content": [{"type": "text", "text": "ok " * 20}],
                                    "stop_reason": None,
                                    "usage": usage,
                                },
                                "requestId": f"req_{sid}_{turn}",
                                "uuid": f"{sid}-a{turn}-{k}",
                                "timestamp": ts,
                            }
                        )
                        + "\n"
                    )
                want["input"] += inp
                want["output"] += out
                want["cache_write"] += cw
                want["cache_read"] += cr
                want["responses"] += 1
            written += fh.tell()
    want["bytes"] = written
    return want


def run_ccusage(binary: str, home: Path) -> dict | None:
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(home)}
    try:
        res = subprocess.run(
            [binary, "daily", "--json", "--offline"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"ccusage failed: {exc}")
        return None
    if res.returncode != 0:
        print(f"ccusage exited {res.returncode}: {res.stderr.strip()[:200]}")
        return None
    return json.loads(res.stdout).get("totals")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mb", nargs="?", type=int, default=100)
    ap.add_argument("--ccusage", default=os.environ.get("CCUSAGE_BIN") or shutil.which("ccusage"))
    args = ap.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        (root / "api").mkdir(parents=True)
        (root / "comm-node.toml").write_text(
            '[project]\nname = "b"\n[[domains]]\nname = "api"\npath = "api"\n'
        )
        home = Path(tmp) / "claude"
        want = generate(home, root / "api", args.mb, rng)
        ws = load_workspace(str(root))
        times, summary = [], None
        for _ in range(3):
            tracker = UsageTracker(ws, home=str(home))
            t0 = time.perf_counter()
            tracker.poll()
            times.append(time.perf_counter() - t0)
            summary = tracker.summary()["domains"]["api"]
        mb = want["bytes"] / 1e6
        print(f"machine: {machine()}")
        print(
            f"{mb:.0f} MB of transcripts, {want['responses']} responses "
            f"(1 to 3 lines each): parse median {median(times):.2f} s = "
            f"{mb / median(times):.0f} MB/s"
        )
        ours = {k: summary[k] for k in ("input", "output", "cache_write", "cache_read")}
        exact = {k: want[k] for k in ours}
        print(f"ours:     {ours}  (matches the generated truth: {ours == exact})")
        if args.ccusage:
            t0 = time.perf_counter()
            theirs = run_ccusage(args.ccusage, home)
            if theirs:
                print(
                    f"ccusage:  input {theirs['inputTokens']}, output {theirs['outputTokens']}"
                    f", cache_write {theirs['cacheCreationTokens']}, cache_read "
                    f"{theirs['cacheReadTokens']}  ({time.perf_counter() - t0:.1f} s)"
                )
                for k, c in (
                    ("input", "inputTokens"),
                    ("cache_write", "cacheCreationTokens"),
                    ("cache_read", "cacheReadTokens"),
                    ("output", "outputTokens"),
                ):
                    print(
                        f"  {k}: {'equal' if ours[k] == theirs[c] else 'DIFFERENT'} "
                        f"({ours[k]} vs {theirs[c]})"
                    )
        else:
            print("ccusage not found (npm install ccusage@18.0.11; pass --ccusage PATH)")


if __name__ == "__main__":
    main()
