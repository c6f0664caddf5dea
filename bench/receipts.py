"""Delivery receipts on real Claude Code (by hand, not in CI): N deliveries into K real
`claude` agents (the pinned build, `--permission-mode default`, offline against the scripted
model), with the hostile texts of bench/inject.py; some tried while a permission dialog is
open, some while operator text sits in the input box.

Each delivery goes through `AgentPanes.inject(..., wait_s=...)`, as `comm-node inject --wait`
does. Reported: deliveries whose receipt says "started" and whether the scripted model's log
has each of those texts (it must: only the agent's UserPromptSubmit hook writes "started");
texts that reached a dialog (the tool ran, or the model got the text: must be 0); operator
drafts lost (changed, erased or submitted: must be 0); failures by reason; median and p95
time from typing to "turn started" (the receipt's own times) and per delivery (wall).

Usage: .venv/bin/python bench/receipts.py [--deliveries 200] [--agents 4] [--seed 1]
                                          [--dialog 0.1] [--operator 0.1] [--json OUT]

Private: its own tmux server, a HOME and CLAUDE_CONFIG_DIR under a temporary directory, the
scripted model on 127.0.0.1; all stopped on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import machine, median, pct
from inject import BASE as INJECT_BASE
from realagents import (
    at_rest,
    claude_binary,
    private_environ,
    stop_agents,
    wait_until,
    write_real_workspace,
)

from comm_node_tui.adapters.claude.screen import read_screen
from comm_node_tui.model import ScriptedModel
from comm_node_tui.panes.inject import NotDelivered
from comm_node_tui.panes.manager import AgentPanes, receipt_reason
from comm_node_tui.protocol import receipts as rc
from comm_node_tui.workspace.discovery import load_workspace

# bench/inject.py's hostile texts, and a leading `!` (a leading / is refused by design)
BASE = [*INJECT_BASE, "!echo not a shell command"]
READY_S = 60.0  # how long a normal delivery may wait for the free prompt
START_S = 30.0  # and then for its turn to start


def text_for(rng: random.Random, i: int) -> str:
    t = rng.choice(BASE)
    if i % 25 == 0:
        # 1 to 11 KB; the number first too: the model's log keeps only 500 characters
        return f"long #{i} " + "lorem ipsum " * rng.randrange(100, 900) + f"#{i}"
    return f"{t} #{i}"


def write_workspace(tmp: Path, base_url: str, n: int, socket: str) -> tuple[Path, list[str]]:
    names = [f"d{i:02d}" for i in range(n)]
    root, _home = write_real_workspace(
        tmp,
        base_url,
        names,
        socket,
        project="receipts",
        claude=claude_binary(),
        agents="nudge_idle_agents = false\n",
        git=False,
    )
    return root, names


class Run:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.normal: list[dict] = []  # {"text", "receipt", "wall", "error"}
        self.dialog: list[dict] = []  # {"text", "reason", "tool_ran"}
        self.operator: list[dict] = []  # {"draft", "reason", "intact"}

    def add(self, kind: str, row: dict) -> None:
        with self.lock:
            getattr(self, kind).append(row)


def deliver(ap: AgentPanes, name: str, text: str, run: Run) -> dict:
    t0 = time.perf_counter()
    row: dict = {"text": text, "agent": name}
    try:
        out = ap.inject(name, text, ready_timeout_s=READY_S, wait_s=START_S)
        row["receipt"] = out["receipt"]
    except NotDelivered as exc:
        row["receipt"], row["error"] = exc.receipt, exc.reason
    row["wall"] = time.perf_counter() - t0
    run.add("normal", row)
    return row


def agent_loop(ws_root: Path, name: str, plan: list[tuple[str, str]], run: Run) -> None:
    ap = AgentPanes(load_workspace(str(ws_root)))  # one tmux client per thread
    pane = ap.tmux.panes()[name].id
    for i, (kind, text) in enumerate(plan):
        wait_until(lambda: at_rest(ap, name), 60)
        if kind == "normal":
            deliver(ap, name, text, run)
        elif kind == "dialog":
            target = ws_root / name / "src" / f"dialog-{i}.txt"
            deliver(ap, name, f"CN_BASH touch {target}", run)
            if not wait_until(lambda: read_screen(ap.peek(name)).dialog == "permission", 30):
                run.add("dialog", {"text": text, "reason": "no dialog opened", "tool_ran": None})
                continue
            reason = None
            try:
                ap.inject(name, text, ready_timeout_s=1.0, wait_s=START_S)
            except NotDelivered as exc:
                reason = receipt_reason(exc.reason)
            still = read_screen(ap.peek(name)).dialog == "permission"
            run.add(
                "dialog",
                {"text": text, "reason": reason, "tool_ran": target.exists(), "open": still},
            )
            ap.answer(name, allow=False)
        else:  # operator
            draft = f"operator draft {i} of {name}: keep me"
            ap.tmux.cmd("send-keys", "-t", pane, "-l", draft)
            wait_until(lambda d=draft: read_screen(ap.peek(name)).input == d, 10)
            reason = None
            try:
                ap.inject(name, text, ready_timeout_s=1.0, wait_s=START_S)
            except NotDelivered as exc:
                reason = receipt_reason(exc.reason)
            intact = read_screen(ap.peek(name)).input == draft
            run.add("operator", {"draft": draft, "text": text, "reason": reason, "intact": intact})
            ap.tmux.cmd("send-keys", "-t", pane, *["BSpace"] * len(draft))


def main() -> int:
    ap_ = argparse.ArgumentParser()
    ap_.add_argument("--deliveries", type=int, default=200)
    ap_.add_argument("--agents", type=int, default=4)
    ap_.add_argument("--seed", type=int, default=1)
    ap_.add_argument("--dialog", type=float, default=0.1, help="share tried into a dialog")
    ap_.add_argument("--operator", type=float, default=0.1, help="share tried over a draft")
    ap_.add_argument("--json", metavar="OUT")
    args = ap_.parse_args()
    # a SIGTERM (a `timeout`) ends the run through the clean-up below, never leaving the
    # claude processes and the tmux server behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))
    rng = random.Random(args.seed)
    socket = f"cn-bench-receipts-{os.getpid()}"
    private_environ(socket)
    run = Run()
    with tempfile.TemporaryDirectory() as tmp, ScriptedModel() as model:
        root, names = write_workspace(Path(tmp), model.base_url, args.agents, socket)
        try:
            ap = AgentPanes(load_workspace(str(root)))
            ap.up()
            for name in names:
                if not wait_until(lambda n=name: "❯\u00a0" in ap.peek(n), 60):
                    sys.exit(f"{name} never reached its prompt:\n{ap.peek(name)}")
            plans: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
            for i in range(args.deliveries):
                x = rng.random()
                kind = (
                    "dialog"
                    if x < args.dialog
                    else "operator"
                    if x < args.dialog + args.operator
                    else "normal"
                )
                plans[names[i % len(names)]].append((kind, text_for(rng, i)))
            t0 = time.perf_counter()
            threads = [
                threading.Thread(target=agent_loop, args=(root, n, plans[n], run)) for n in names
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            time.sleep(2.0)  # the last Stop hooks
            report = summarise(run, model, rc.path_in(ap.ws.paths.state), wall, args)
        finally:
            stop_agents(socket)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def summarise(run: Run, model: ScriptedModel, path: str, wall: float, args) -> dict:
    asked = [rc.normalise(e.prompt) for e in model.requests() if e.kind == "prompt" and e.prompt]
    found = rc.fold(rc.read_records(path, tail_bytes=os.path.getsize(path)))

    def in_model_log(text: str) -> bool:
        """The model was asked exactly this (its log keeps a prompt's first 500 chars: a
        long text is compared by its start). Exact, not a substring: "#6" is in "#66"."""
        want = rc.normalise(text)
        if len(want) > 450:
            return any(p.startswith(want[:450]) for p in asked)
        return any(p == want for p in asked)

    started, matched, failed, starts = 0, 0, {}, []
    unstarted: list[str] = []
    for row in run.normal:
        rec = found.get(row.get("receipt") or "")
        if rec is not None and rec["state"] in rc.PROVED:
            started += 1
            matched += in_model_log(row["text"])
            t = rec["times"]
            if "typed" in t and "started" in t:
                starts.append(t["started"] - t["typed"])
        else:
            why = (rec or {}).get("reason") or row.get("error") or "?"
            failed[why] = failed.get(why, 0) + 1
            unstarted.append(f"{why}: {row['text'][:40]!r} ({len(row['text'])} chars)")
    into_dialog = [
        {**d, "in_model_log": in_model_log(d["text"])}
        for d in run.dialog
        if d["tool_ran"] or in_model_log(d["text"]) or d["reason"] is None
    ]
    in_dialog = len(into_dialog)
    lost = sum(
        1
        for o in run.operator
        if not o["intact"] or any(rc.normalise(o["draft"]) in p for p in asked)
    )
    walls = [r["wall"] for r in run.normal]
    return {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "agents": args.agents,
        "deliveries": len(run.normal) + len(run.dialog) + len(run.operator),
        "normal": len(run.normal),
        "started": started,
        "started_in_model_log": matched,
        "failed": failed,
        "dialog_attempts": len(run.dialog),
        "dialog_reasons": sorted({str(d["reason"]) for d in run.dialog}),
        "texts_in_dialogs": in_dialog,
        "texts_in_dialogs_detail": into_dialog,
        "operator_attempts": len(run.operator),
        "operator_reasons": sorted({str(o["reason"]) for o in run.operator}),
        "operator_text_lost": lost,
        "unstarted": unstarted,
        "retried": sum(1 for r in found.values() if r["attempts"] > 1),
        "start_median_s": round(median(starts), 3) if starts else None,
        "start_p95_s": round(pct(starts, 95), 3) if starts else None,
        "wall_median_s": round(median(walls), 3) if walls else None,
        "wall_p95_s": round(pct(walls, 95), 3) if walls else None,
        "wall_s": round(wall, 1),
    }


def print_report(r: dict) -> None:
    print(f"machine: {r['machine']}; {r['date']}")
    print(
        f"{r['deliveries']} deliveries into {r['agents']} real Claude Code agents "
        f"({r['normal']} normal incl. the dialogs' own prompts, {r['dialog_attempts']} into an "
        f"open dialog, {r['operator_attempts']} over operator text); wall {r['wall_s']} s"
    )
    print(
        f"started (hook-proved): {r['started']}/{r['normal']}; of those in the model's log: "
        f"{r['started_in_model_log']}; failed: {r['failed'] or 'none'}; retried: {r['retried']}"
    )
    for line in r["unstarted"]:
        print(f"  not started: {line}")
    print(f"texts in dialogs: {r['texts_in_dialogs']} (reasons {r['dialog_reasons']})")
    for d in r["texts_in_dialogs_detail"]:
        print(f"  into a dialog: {dict(d, text=d['text'][:60])}")
    print(f"operator text lost: {r['operator_text_lost']} (reasons {r['operator_reasons']})")
    print(
        f"typing -> turn started: median {r['start_median_s']} s, p95 {r['start_p95_s']} s; "
        f"per delivery (wall): median {r['wall_median_s']} s, p95 {r['wall_p95_s']} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
