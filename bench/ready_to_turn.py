"""From "a task became ready" to "the idle agent's turn started", on real Claude Code (by hand,
not in CI): issue 17's measurement. N real `claude` agents (the pinned build, offline against
the scripted model) sit idle at their prompts while the real engine runs in this process (as
`comm-node serve` runs it); one event at a time makes work ready for one idle agent, in the
three ways work wakes agents:

- dependency: the agent's task W<i> waits on B<i> of the agentless domain `hub`; `hub` closes
  B<i> with the real CLI (`comm-node task done`). Ready from the moment that command returns.
- assign: the operator assigns task S<i> to the agent with the room's own action
  (operator/actions.py `OperatorActions.assign_task`). Ready when it returns.
- artifact: `hub` publishes new bytes of `<agent>-feed.txt`, which only that agent imports
  (`comm-node artifact publish`); the engine announces it. Ready when the publish returns (the
  engine's announcement comes after; its time is in the timeline).

"Turn started" is the agent's own UserPromptSubmit hook marking the engine's nudge `started`
in .comm-node/receipts.jsonl: Claude Code runs that hook when it accepts the prompt, before
it builds the request, and it is what the engine itself believes (a typed text the screen
shows as sent may never reach the model). The scripted model's arrival time of the request is
reported beside it (the hook plus Claude Code building the request).

Reported, per kind and overall: count, median, p95, max; the timeline medians (ready ->
engine saw it -> nudge typed -> submitted -> turn started -> request at the model); the
load average; wakes that started more than one turn (double delivery: must be 0), nudges
that failed or reached a dialog (must be 0), texts the model got vs turns the hooks proved.

Usage: .venv/bin/python bench/ready_to_turn.py [--agents 4] [--rounds 30] [--seed 1]
                                               [--json OUT] [--keep]

A round is one event of each kind, in a seeded order, each for a seeded random agent, after a
seeded rest of 0.5-3 s once that agent is idle again. Private: its own tmux server, a HOME and
CLAUDE_CONFIG_DIR under a temporary directory, the scripted model on 127.0.0.1; all stopped on
exit, Ctrl-C or SIGTERM. `--keep` keeps the temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, pct
from realagents import (
    EngineThread,
    at_rest,
    claude_binary,
    iso_ts,
    private_environ,
    read_events,
    stop_agents,
    wait_until,
    write_real_workspace,
)

KINDS = ("dependency", "assign", "artifact")
HUB = "hub"  # the domain with no agent: it closes blockers and publishes artifacts
START_S = 120.0  # an event whose turn did not start by then is reported as not started
NUDGE_PREFIX = "You have "  # the engine's nudge (engine/nudges.py)


def plan(rng: random.Random, names: list[str], rounds: int) -> list[tuple[str, str]]:
    """(kind, agent) per event: each round has every kind once, in a shuffled order."""
    out = []
    for _ in range(rounds):
        kinds = list(KINDS)
        rng.shuffle(kinds)
        out.extend((k, rng.choice(names)) for k in kinds)
    return out


def write_workspace(
    tmp: Path, base_url: str, names: list[str], socket: str, events: list[tuple[str, str]]
) -> tuple[Path, object]:
    tasks = []
    for i, (kind, agent) in enumerate(events):
        if kind == "dependency":
            tasks.append(f'[[tasks]]\nid = "B{i}"\ntitle = "blocker {i}"\ndomain = "{HUB}"\n')
            tasks.append(
                f'[[tasks]]\nid = "W{i}"\ntitle = "work {i} after B{i}"\ndomain = "{agent}"\n'
                f'depends_on = ["B{i}"]\n'
            )
        elif kind == "assign":
            tasks.append(f'[[tasks]]\nid = "S{i}"\ntitle = "assigned {i}"\ndomain = "{agent}"\n')
    return write_real_workspace(
        tmp,
        base_url,
        names,
        socket,
        project="wake",
        claude=claude_binary(),
        domain=lambda name: f'imports = {{ {HUB} = ["{name}-feed.txt"] }}\n',
        agentless=(HUB,),
        tasks="\n".join(tasks),
    )


def cli(root: Path, *args: str) -> None:
    """The real CLI as domain `hub` (an agent's command, run by the bench, not typed)."""
    env = {**os.environ, "COMM_NODE_DOMAIN": HUB}
    res = subprocess.run(
        [sys.executable, "-m", "comm_node_tui", *args],
        cwd=root / HUB,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode != 0:
        raise RuntimeError(f"comm-node {' '.join(args)}: {res.stderr.strip()}")


def nudges_since(path: str, agent: str, since: float) -> list[dict]:
    """The engine's nudges to `agent` queued at or after `since` (receipts, oldest first)."""
    from comm_node_tui.protocol import receipts as rc

    return [
        r
        for r in rc.receipts(path, agent)
        if r.get("by") == "nudge" and (r["times"].get("queued") or 0) >= since - 0.002
    ]


def run_events(rig: dict, events: list[tuple[str, str]], rng: random.Random) -> list[dict]:
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.operator.actions import OperatorActions
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol import receipts as rc

    root, ws = rig["root"], rig["ws"]
    ap = AgentPanes(ws)
    ops = OperatorActions(ws, lambda: Coordinator(ws))
    path = rc.path_in(ws.paths.state)
    rows = []
    for i, (kind, agent) in enumerate(events):
        # the agent idle at its prompt, its last turn answered, then a seeded rest
        if not wait_until(lambda a=agent: at_rest(ap, a), 60):
            print(f"event {i}: {agent} not at rest after 60 s", flush=True)
        time.sleep(rng.uniform(0.5, 3.0))  # the rest between events is part of the plan
        row: dict = {"i": i, "kind": kind, "agent": agent, "load1": os.getloadavg()[0]}
        if kind == "dependency":
            cli(root, "task", "claim", f"B{i}")  # set-up, not timed
        # The work is ready somewhere between launch and return (a loaded machine takes a
        # while to end a CLI process: the engine may nudge before it has): the nudge is looked
        # for from the launch, the latency counted from the return.
        launch = row["launch"] = time.time()
        if kind == "dependency":
            cli(root, "task", "done", f"B{i}")
        elif kind == "assign":
            ops.assign_task(f"S{i}", agent)
        else:
            feed = root / HUB / f"{agent}-feed.txt"
            feed.write_text(f"feed for {agent}, event {i}, {os.urandom(8).hex()}\n")
            cli(root, "artifact", "publish", str(feed), "--name", f"{agent}-feed.txt")
        t0 = time.time()
        row["ready"] = t0

        def started(a=agent, t=launch):
            return next((r for r in nudges_since(path, a, t) if r["state"] in rc.PROVED), None)

        rec = wait_until(started, START_S, every=0.01)
        if rec is None:
            row["error"] = "no turn started"
            row["nudges"] = nudges_since(path, agent, launch)
            print(f"event {i} {kind} -> {agent}: no turn within {START_S:g} s", flush=True)
            rows.append(row)
            continue
        row["receipt"] = rec["id"]
        row["times"] = dict(rec["times"])
        row["latency"] = rec["times"]["started"] - t0
        # the turn ends (Stop marks the receipt answered) before the next event
        wait_until(lambda r=rec["id"]: (rc.find(path, r) or {}).get("state") == "answered", 60)
        rows.append(row)
        print(
            f"event {i:3d} {kind:10s} -> {agent}: turn started {row['latency']:.2f} s after "
            f"ready (load {row['load1']:.1f})",
            flush=True,
        )
    # Late duplicates: a second turn for an event would start within seconds of its first.
    wait_until(lambda: all(at_rest(ap, n) for n in rig["names"]), 30)
    time.sleep(3.0)  # "nothing more happens": room for a late second nudge to show
    return rows


def timeline(rows: list[dict], events: list[dict], model_log: list) -> None:
    """Add each event's engine-side times: when the engine logged the work (task.ready,
    artifact.announced, task.assigned) and when the model got the nudge's request."""
    by_type: dict[str, list[tuple[float, dict]]] = {}
    for e in events:
        by_type.setdefault(e.get("type", ""), []).append((iso_ts(e.get("ts", "")), e))
    prompts = [(e.time, e.prompt) for e in model_log if e.kind == "prompt" and e.prompt]
    for row in rows:
        if "times" not in row:
            continue
        t0, agent = row["ready"], row["agent"]
        # events are logged with millisecond stamps: one taken just before t0 counts
        want = {
            "dependency": ("task.ready", lambda e, i=row["i"]: e["data"].get("task") == f"W{i}"),
            "assign": ("task.assigned", lambda e, i=row["i"]: e["data"].get("task") == f"S{i}"),
            "artifact": ("artifact.announced", lambda e, a=agent: a in e["data"].get("to", [])),
        }[row["kind"]]
        seen = [
            ts
            for ts, e in by_type.get(want[0], [])
            if ts >= t0 - 1.0 and isinstance(e.get("data"), dict) and want[1](e)
        ]
        if seen:
            row["engine_saw"] = min(seen)
        typed = row["times"].get("typed") or row["times"].get("queued")
        at_model = [t for t, p in prompts if t >= typed and p.startswith(NUDGE_PREFIX)]
        if at_model:
            row["at_model"] = min(at_model)


def stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "median_s": round(median(values), 3),
        "p95_s": round(pct(values, 95), 3),
        "max_s": round(max(values), 3),
    }


def summarise(rows: list[dict], receipts: list[dict], model_log: list, args, wall: float) -> dict:
    from comm_node_tui.protocol import receipts as rc

    ok = [r for r in rows if "latency" in r]
    per_kind = {k: stats([r["latency"] for r in ok if r["kind"] == k]) for k in KINDS}
    to_model = [r["at_model"] - r["ready"] for r in ok if "at_model" in r]

    def step(a: str, b: str) -> list[float]:
        out = []
        for r in ok:
            t = {"ready": r["ready"], **r["times"], **{k: r[k] for k in ("engine_saw",) if k in r}}
            if a in t and b in t:
                out.append(t[b] - t[a])
        return out

    steps = {
        "ready_to_engine_saw": stats(step("ready", "engine_saw")),
        "ready_to_nudge_queued": stats(step("ready", "queued")),
        "queued_to_typed": stats(step("queued", "typed")),
        "typed_to_submitted": stats(step("typed", "submitted")),
        "submitted_to_started": stats(step("submitted", "started")),
    }
    # Double delivery: nudges that started a turn between one event and the next event for
    # the same agent, beyond the one the event is measured by.
    nudges = [r for r in receipts if r.get("by") == "nudge"]
    started = [r for r in nudges if r["state"] in rc.PROVED]
    doubles = []
    for r in ok:
        later = [x["launch"] for x in ok if x["agent"] == r["agent"] and x["ready"] > r["ready"]]
        end = min(later) if later else float("inf")
        n = sum(
            1
            for x in started
            if x["agent"] == r["agent"] and r["launch"] <= (x["times"].get("queued") or 0) < end
        )
        if n != 1:
            doubles.append({"event": r["i"], "agent": r["agent"], "turns": n})
    failed = [
        {"id": x["id"], "agent": x["agent"], "reason": x.get("reason")}
        for x in nudges
        if x["state"] == rc.FAILED
    ]
    prompts = [e for e in model_log if e.kind == "prompt" and (e.prompt or "").startswith("You")]
    return {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "agents": args.agents,
        "rounds": args.rounds,
        "seed": args.seed,
        "events": len(rows),
        "started": len(ok),
        "not_started": [r["i"] for r in rows if "latency" not in r],
        "ready_to_turn_started": stats([r["latency"] for r in ok]),
        "per_kind": per_kind,
        "ready_to_request_at_model": stats(to_model),
        "steps": steps,
        "load1": stats([r["load1"] for r in rows]),
        "double_or_missing": doubles,
        "nudges": len(nudges),
        "nudges_started": len(started),
        "nudges_failed": failed,
        "nudge_prompts_at_model": len(prompts),
        "wall_s": round(wall, 1),
    }


def print_report(r: dict) -> None:
    def line(s: dict) -> str:
        if not s.get("count"):
            return "none"
        return (
            f"n={s['count']}, median {s['median_s']:.2f} s, p95 {s['p95_s']:.2f} s, "
            f"max {s['max_s']:.2f} s"
        )

    print(f"machine: {r['machine']}; {r['date']}")
    print(
        f"{r['events']} events into {r['agents']} real Claude Code agents ({r['rounds']} rounds, "
        f"seed {r['seed']}), wall {r['wall_s']} s; load average (1 min) over the events: "
        f"median {r['load1'].get('median_s')}, max {r['load1'].get('max_s')}"
    )
    print(f"ready -> turn started: {line(r['ready_to_turn_started'])}")
    for k, s in r["per_kind"].items():
        print(f"  {k:10s} {line(s)}")
    print(f"ready -> request at the model: {line(r['ready_to_request_at_model'])}")
    for k, s in r["steps"].items():
        print(f"  {k:22s} {line(s)}")
    print(
        f"nudges: {r['nudges']} typed, {r['nudges_started']} started a turn, "
        f"{len(r['nudges_failed'])} failed {r['nudges_failed'] or ''}; nudge texts the model got: "
        f"{r['nudge_prompts_at_model']}"
    )
    print(f"events without exactly one started turn: {r['double_or_missing'] or 'none'}")
    if r["not_started"]:
        print(f"not started within {START_S:g} s: events {r['not_started']}")


def main() -> int:
    ap_ = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap_.add_argument("--agents", type=int, default=4)
    ap_.add_argument("--rounds", type=int, default=30)
    ap_.add_argument("--seed", type=int, default=1)
    ap_.add_argument("--json", metavar="OUT", help="also write the JSON summary (and rows) here")
    ap_.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap_.parse_args()

    from comm_node_tui.model import ScriptedModel
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol import receipts as rc
    from comm_node_tui.workspace.discovery import load_workspace

    # nothing of the user's Claude Code, workspace or tmux reaches the engine, the CLI or the
    # tmux server this process starts (the server hands this environment to the panes)
    socket = f"cn-bench-wake-{os.getpid()}"
    private_environ(socket)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))
    rng = random.Random(args.seed)
    names = [f"d{i:02d}" for i in range(args.agents)]
    events = plan(rng, names, args.rounds)
    tmp = Path(tempfile.mkdtemp(prefix="cn-wake-"))
    eng = None
    try:
        with ScriptedModel(log_path=tmp / "model.jsonl") as model:
            root, _home = write_workspace(tmp, model.base_url, names, socket, events)
            ws = load_workspace(str(root))
            eng = EngineThread(ws)
            eng.start()
            AgentPanes(ws).up(names)
            ap = AgentPanes(ws)
            for name in names:
                if not wait_until(lambda n=name: at_rest(ap, n), 120):
                    sys.exit(f"{name} never reached its prompt:\n{ap.peek(name)}")
            print(f"{len(names)} agents at their prompt; {len(events)} events", flush=True)
            t_start = time.time()
            rows = run_events({"root": root, "ws": ws, "names": names}, events, rng)
            wall = time.time() - t_start
            timeline(rows, read_events(ws), model.requests())
            found = rc.fold(
                rc.read_records(
                    rc.path_in(ws.paths.state),
                    tail_bytes=os.path.getsize(rc.path_in(ws.paths.state)),
                )
            )
            report = summarise(rows, list(found.values()), model.requests(), args, wall)
            report["rows"] = rows
    finally:
        if eng is not None:
            eng.stop()
        stop_agents(socket)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
