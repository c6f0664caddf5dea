"""`comm-node hook` wall time per call against `python3 -c pass` (target: at most 3x).

Feeds real-shaped payloads (PreToolUse for an Edit inside the scope, so the edit guard runs;
PostToolUse; Stop) to the installed console script, alternating with `python3 -c pass`, in a
warm workspace. Usage: python bench/hook_startup.py [RUNS]
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median, pct


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    script = Path(sys.executable).parent / "comm-node"
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "comm_node_tui"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        make_workspace(Path(tmp), 3)
        cwd = os.path.join(tmp, "d00")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
        payloads = [
            {
                "hook_event_name": "PreToolUse",
                "tool_name": "Edit",
                "tool_input": {
                    "file_path": os.path.join(cwd, "src", "a.py"),
                    "old_string": "a",
                    "new_string": "b",
                },
            },
            {
                "hook_event_name": "PostToolUse",
                "tool_name": "Bash",
                "tool_input": {"command": "ls"},
                "tool_response": {"stdout": ""},
            },
            {"hook_event_name": "Stop", "stop_hook_active": False},
        ]
        data = [
            json.dumps(
                {
                    "session_id": "s",
                    "transcript_path": "/tmp/t.jsonl",
                    "cwd": cwd,
                    "permission_mode": "default",
                    **p,
                }
            ).encode()
            for p in payloads
        ]

        def timed(cmd, stdin=None) -> float:
            t0 = time.perf_counter()
            subprocess.run(
                cmd, input=stdin, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL
            )
            return time.perf_counter() - t0

        timed([str(script), "hook"], data[0])  # the first call writes the config cache
        base, hook = [], {i: [] for i in range(len(data))}
        for _ in range(runs):
            for i, d in enumerate(data):
                base.append(timed([sys.executable, "-c", "pass"]))
                hook[i].append(timed([str(script), "hook"], d))
    mb = median(base)
    print(f"machine: {machine()}")
    print(f"python3 -c pass: median {mb * 1000:.1f} ms ({len(base)} runs)")
    for i, name in enumerate(["PreToolUse Edit (guard)", "PostToolUse", "Stop"]):
        m = median(hook[i])
        print(
            f"comm-node hook {name}: median {m * 1000:.1f} ms, p90 "
            f"{pct(hook[i], 90) * 1000:.1f} ms, {m / mb:.2f}x"
        )


if __name__ == "__main__":
    main()
