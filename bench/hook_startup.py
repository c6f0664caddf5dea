"""`comm-node hook` per call against `python3 -c pass` (target, issue 22: at most 2x).

Feeds a real-shaped payload of every hook event comm-node installs
(adapters/claude/settings.py EVENTS; PreToolUse twice: an Edit, so the edit guard runs, and a
Bash) to the installed console script, alternating with `python3 -c pass`, in a warm
workspace (config cache written). Reports medians of wall time and of CPU time (user + sys of
the child): on a shared machine the wall time swings with the load, the CPU time much less.

Usage: python bench/hook_startup.py [RUNS] [--sizes] [--handoff] [--before DIR]
  --sizes: the growth table instead: PreToolUse Edit with 5/50/500/5,000 locks held by other
  domains, PostToolUse and Stop with 0/100/1,000 unread messages in the inbox.
  --handoff: SessionStart with its hand-off at work (the agent holds a task with a contract,
  two locks, unread mail): each `source`, native tasks.toml and Beads, 20/200/2,000/20,000
  tasks.
  --before DIR: also run an older checkout's comm_node_tui (DIR holds it, e.g. from
  `git archive OLD comm_node_tui | tar -x -C DIR`) through PYTHONPATH, side by side.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, make_workspace, median, pct

from comm_node_tui.adapters.claude.settings import EVENTS


def _payload(event: str, cwd: str) -> dict:
    base = {
        "session_id": "0b8a1f2e-5c3d-4e6f-8a9b-0c1d2e3f4a5b",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": cwd,
        "permission_mode": "default",
        "hook_event_name": event,
    }
    bash = {"tool_name": "Bash", "tool_input": {"command": "ls"}}
    extra: dict = {
        "SessionStart": {"source": "startup"},
        "UserPromptSubmit": {"prompt": "go on"},
        "PreToolUse": bash,
        "PermissionRequest": bash,
        "PostToolUse": {**bash, "tool_response": {"stdout": ""}},
        "PostToolUseFailure": {**bash, "error": "exit 1"},
        "Notification": {"message": "Claude is waiting for your input"},
        "Stop": {"stop_hook_active": False},
        "StopFailure": {"error": "overloaded"},
        "SubagentStop": {"stop_hook_active": False},
        "PreCompact": {"trigger": "auto"},
        "SessionEnd": {"reason": "exit"},
    }.get(event, {})
    return {**base, **extra}


def _edit(cwd: str) -> dict:
    return {
        **_payload("PreToolUse", cwd),
        "tool_name": "Edit",
        "tool_input": {"file_path": os.path.join(cwd, "src", "a.py"), "old_string": "a"},
    }


def timed(cmd: list[str], cwd: str, env: dict, stdin: bytes | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of `cmd`."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, input=stdin, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _locks(root: Path, n: int, holders: list[str]) -> None:
    """`n` exclusive locks of other domains on files beside src/a.py (none covers it), as
    `comm-node lock acquire` writes them (coordination/locks.py)."""
    from comm_node_tui.coordination.locks import Lock
    from comm_node_tui.protocol.globs import Glob

    locks = []
    for i in range(n):
        holder = holders[i % len(holders)]
        base = str(root / holder)
        pattern = f"/src/m{i}.py" if i % 3 else f"src/pkg{i}/**"
        locks.append(Lock(holder, pattern, Glob(base, pattern), True, time.time() + 3600))
    from comm_node_tui.coordination.store import CoordStore

    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    # through the store, as the lock commands write it (with the guard's locks.index)
    CoordStore(str(state)).write(
        "locks.json", {"version": 1, "locks": [lk.to_json() for lk in locks]}
    )


def _inbox(root: Path, domain: str, n: int) -> None:
    from comm_node_tui.protocol.messages import new_message_id, now_iso, render

    inbox = root / domain / ".comm-node" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        meta = {
            "id": new_message_id(),
            "from": "d01",
            "to": [domain],
            "type": "info",
            "priority": "normal",
            "created": now_iso(),
        }
        (inbox / f"{meta['id']}.md").write_text(render(meta, f"message {i}\n"))


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}


def _compile() -> None:
    # A wheel install ships bytecode; an editable one under PYTHONDONTWRITEBYTECODE would
    # recompile every module on every run.
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "comm_node_tui"), quiet=1)


def events_table(runs: int) -> None:
    script = str(Path(sys.executable).parent / "comm-node")
    with tempfile.TemporaryDirectory() as tmp:
        make_workspace(Path(tmp), 3)
        cwd = os.path.join(tmp, "d00")
        env = _env()
        cases = {"PreToolUse Edit (guard)": _edit(cwd)}
        cases.update({e: _payload(e, cwd) for e in EVENTS})
        data = {name: json.dumps(p).encode() for name, p in cases.items()}
        timed([script, "hook"], cwd, env, data["SessionStart"])  # writes the config cache
        base_w: list[float] = []
        base_c: list[float] = []
        hook = {name: ([], []) for name in data}
        for _ in range(runs):
            for name, d in data.items():
                w, c = timed([sys.executable, "-c", "pass"], cwd, env)
                base_w.append(w)
                base_c.append(c)
                w, c = timed([script, "hook"], cwd, env, d)
                hook[name][0].append(w)
                hook[name][1].append(c)
    bw, bc = median(base_w), median(base_c)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"python3 -c pass: median wall {bw * 1000:.1f} ms, cpu {bc * 1000:.1f} ms")
    print("| event | wall median | p90 | wall ratio | cpu median | cpu ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (w, c) in hook.items():
        mw, mc = median(w), median(c)
        print(
            f"| {name} | {mw * 1000:.1f} ms | {pct(w, 90) * 1000:.1f} ms | {mw / bw:.2f}x "
            f"| {mc * 1000:.1f} ms | {mc / bc:.2f}x |"
        )


def sizes_table(runs: int, before: str | None = None) -> None:
    script = str(Path(sys.executable).parent / "comm-node")
    env = _env()
    env_before = {**env, "PYTHONPATH": before} if before else None
    rows = []
    cases = [("PreToolUse Edit", "locks", n) for n in (5, 50, 500, 5000)]
    if before is None:
        cases += [(ev, "inbox", n) for ev in ("PostToolUse", "Stop") for n in (0, 100, 1000)]
    for event, what, n in cases:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_workspace(root, 3)
            cwd = str(root / "d00")
            if what == "locks":
                _locks(root, n, ["d01", "d02"])
                payload = _edit(cwd)
            else:
                _inbox(root, "d00", n)
                payload = _payload(event, cwd)
            data = json.dumps(payload).encode()
            timed([script, "hook"], cwd, env, data)  # the config cache
            bw, bc, hw, hc, oc = [], [], [], [], []
            for _ in range(runs):
                w, c = timed([sys.executable, "-c", "pass"], cwd, env)
                bw.append(w)
                bc.append(c)
                w, c = timed([script, "hook"], cwd, env, data)
                hw.append(w)
                hc.append(c)
                if env_before is not None:
                    oc.append(timed([script, "hook"], cwd, env_before, data)[1])
        b = median(bc)
        old = f"{median(oc) / b:.2f}x" if oc else ""
        rows.append((event, what, n, median(hw), median(hw) / median(bw), median(hc) / b, old))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; {runs} runs each")
    print("| event | held | wall median | wall ratio | before: cpu ratio | cpu ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for event, what, n, mw, rw, rc, old in rows:
        print(f"| {event} | {n:,} {what} | {mw * 1000:.1f} ms | {rw:.2f}x | {old} | {rc:.2f}x |")


def _handoff_workspace(root: Path, source: str, n: int) -> str:
    """A workspace whose d00 holds task t1 (with a contract and a failed attempt), two
    locks and three unread messages; `n` tasks in the `source` (native or beads)."""
    make_workspace(root, 3)
    with open(root / "comm-node.toml", "a") as fh:
        fh.write(f'\n[tasks]\nsource = "{source}"\n')
    if source == "native":
        parts = []
        for i in range(n):
            dep = f'depends_on = ["t{i - 1}"]\n' if i % 10 else ""
            parts.append(
                f'[[tasks]]\nid = "t{i}"\ntitle = "task number {i}"\ndomain = "d0{i % 3}"\n'
                f'priority = {i % 4}\ndone_when = ["criterion {i}", "tests pass"]\n'
                f'verify = ["pytest -q tests/test_{i}.py"]\nnotes = "context of {i}"\n{dep}'
            )
        (root / "tasks.toml").write_text("\n".join(parts))
    else:
        (root / ".beads").mkdir()
        with open(root / ".beads" / "issues.jsonl", "w") as fh:
            for i in range(n):
                rec = {
                    "id": f"t{i}",
                    "title": f"task number {i}",
                    "status": "open",
                    "priority": i % 4,
                    "issue_type": "task",
                    "labels": [f"domain:d0{i % 3}"],
                    "acceptance_criteria": f"- criterion {i}\n- tests pass",
                    "notes": f"context of {i}",
                    "dependencies": [
                        {"issue_id": f"t{i}", "depends_on_id": f"t{i - 1}", "type": "blocks"}
                    ]
                    if i % 10
                    else [],
                }
                fh.write(json.dumps(rec) + "\n")
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    overlay = {
        "version": 1,
        "tasks": {
            "t1": {
                "status": "in_progress",
                "assignee": "d00",
                "attempts": [{"at": "2026-11-22T00:00:00Z", "result": "fail", "reason": "exit 1"}],
            }
        },
    }
    (state / "tasks.json").write_text(json.dumps(overlay))
    _locks(root, 2, ["d00"])
    _inbox(root, "d00", 3)
    return str(root / "d00")


def handoff_table(runs: int, before: str | None) -> None:
    """SessionStart's hand-off: each source, each task source and size; before and after."""
    script = str(Path(sys.executable).parent / "comm-node")
    env = _env()
    env_before = {**env, "PYTHONPATH": before} if before else None
    rows = []
    cases = [("native", n, "startup") for n in (20, 200, 2000, 20000)]
    cases += [("native", 200, s) for s in ("resume", "clear", "compact")]
    cases += [("beads", n, "startup") for n in (20, 200, 2000, 20000)]
    for source, n, kind in cases:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = _handoff_workspace(Path(tmp), source, n)
            payload = {**_payload("SessionStart", cwd), "source": kind}
            data = json.dumps(payload).encode()
            timed([script, "hook"], cwd, env, data)  # the config (and tasks) cache
            base, new, old = [], [], []
            for _ in range(runs):
                base.append(timed([sys.executable, "-c", "pass"], cwd, env)[1])
                new.append(timed([script, "hook"], cwd, env, data)[1])
                if env_before is not None:
                    old.append(timed([script, "hook"], cwd, env_before, data)[1])
        b = median(base)
        rows.append((source, n, kind, b, median(new) / b, median(old) / b if old else None))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; {runs} runs each")
    print("| tasks | source | python -c pass cpu | before: cpu ratio | after: cpu ratio |")
    print("| --- | --- | --- | --- | --- |")
    for source, n, kind, b, rn, ro in rows:
        old_text = f"{ro:.2f}x" if ro is not None else ""
        print(f"| {n:,} {source} | {kind} | {b * 1000:.1f} ms | {old_text} | {rn:.2f}x |")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 30
    _compile()
    before = None
    if "--before" in sys.argv:
        before = sys.argv[sys.argv.index("--before") + 1]
        args.remove(before)
        runs = int(args[0]) if args else 30
    if "--sizes" in sys.argv:
        sizes_table(runs, before)
    elif "--handoff" in sys.argv:
        handoff_table(runs, before)
    else:
        events_table(runs)


if __name__ == "__main__":
    main()
