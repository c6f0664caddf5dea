"""The engine as a real process: `comm-node serve`, one per workspace, and crash safety."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from comm_node_tui.protocol.messages import render, split
from tests.conftest import cli_env, start_serve, write_workspace
from tests.waiting import wait_for


def engine_ready(root: Path) -> bool:
    events = root / ".comm-node" / "events.jsonl"
    return events.exists() and "engine.started" in events.read_text()


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    print(f"engine pid {proc.pid} exited {proc.returncode}; stderr:\n{err}")  # shown on failure
    return out, err


def test_serve_routes_live_and_refuses_a_second_engine(ws_root, cli):
    proc = start_serve(ws_root)
    try:
        wait_for(lambda: engine_ready(ws_root))
        second = subprocess.run(
            [sys.executable, "-m", "comm_node_tui", "serve", "-w", str(ws_root)],
            capture_output=True,
            text=True,
            timeout=10,
            env=cli_env(),
        )
        assert second.returncode == 1
        assert f"pid {proc.pid}" in second.stderr and second.stderr.count("\n") == 1
        assert cli("send", "--to", "docs", "live message", cwd=ws_root / "backend").returncode == 0
        inbox = ws_root / "docs" / ".comm-node" / "inbox"
        [path] = wait_for(lambda: list(inbox.glob("*.md")), timeout=10)
        assert split(path.read_text())[1] == "live message\n"
        # A status change is noticed and logged.
        cli("status", "set", "busy", "--task", "T1", cwd=ws_root / "docs")
        events = ws_root / ".comm-node" / "events.jsonl"
        wait_for(lambda: '"agent.state"' in events.read_text(), timeout=10)
    finally:
        _out, err = stop(proc)
    assert proc.returncode == 0, err
    types = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert types[0] == "engine.started" and types[-1] == "engine.stopped"
    assert "message.routed" in types


def test_messages_sent_while_no_engine_runs_wait_and_are_routed(ws_root, cli):
    for i in range(5):
        assert (
            cli("send", "--to", "frontend", f"offline {i}", cwd=ws_root / "backend").returncode == 0
        )
    proc = start_serve(ws_root)
    try:
        inbox = ws_root / "frontend" / ".comm-node" / "inbox"
        wait_for(lambda: len(list(inbox.glob("*.md"))) == 5)
    finally:
        stop(proc)


def test_a_broken_config_edit_is_reported_and_the_old_one_kept(ws_root, cli):
    proc = start_serve(ws_root)
    try:
        wait_for(lambda: engine_ready(ws_root))
        toml = ws_root / "comm-node.toml"
        good = toml.read_text()
        toml.write_text(good + "\n[bogus]\n")
        events = ws_root / ".comm-node" / "events.jsonl"
        wait_for(lambda: "config.invalid" in events.read_text())
        assert "bogus: unknown key" in events.read_text()
        assert (
            cli(
                "send", "--to", "docs", "still routing", cwd=ws_root / "backend", env=cli_env()
            ).returncode
            == 1
        )  # the CLI refuses the broken config
        toml.write_text(good)
        (ws_root / "backend" / ".comm-node" / "outbox").mkdir(parents=True, exist_ok=True)
        assert cli("send", "--to", "docs", "again", cwd=ws_root / "backend").returncode == 0
        wait_for(lambda: list((ws_root / "docs" / ".comm-node" / "inbox").glob("*.md")))
        assert proc.poll() is None
    finally:
        stop(proc)


def test_sigkill_mid_burst_then_restart_delivers_exactly_once(tmp_path):
    names = [f"d{i}" for i in range(6)]
    root = write_workspace(tmp_path / "ws", domains=names, budget=10_000_000)
    expected: collections.Counter = collections.Counter()
    per_domain = 300
    for sender_i, sender in enumerate(names):
        box = root / sender / ".comm-node" / "outbox"
        box.mkdir(parents=True)
        for j in range(per_domain):
            to = [names[(sender_i + 1) % 6]] if j % 3 else [n for n in names if n != sender]
            body = f"{sender} #{j}"
            meta = {"to": to, "type": "info"}
            if j % 10:  # every tenth has no id: the router derives a stable one
                meta = {"id": f"m-{sender}-{j:05d}", **meta}
            (box / f"{sender}-{j:05d}.md").write_text(render(meta, body))
            for r in to:
                expected[(r, body)] += 1
    old = time.time() - 60
    for sender in names:
        for f in (root / sender / ".comm-node" / "outbox").iterdir():
            os.utime(f, (old, old))

    def delivered() -> collections.Counter:
        got: collections.Counter = collections.Counter()
        for r in names:
            box = root / r / ".comm-node" / "inbox"
            for f in box.glob("*.md"):
                got[(r, split(f.read_text())[1].strip())] += 1
        return got

    def inbox_files() -> int:
        return sum(
            len(os.listdir(root / r / ".comm-node" / "inbox"))
            for r in names
            if (root / r / ".comm-node" / "inbox").exists()
        )

    kills = 0
    for threshold in (200, 900, 1800):
        proc = start_serve(root)
        wait_for(lambda t=threshold: inbox_files() >= t, every=0.001)
        proc.kill()
        proc.wait(timeout=10)
        remaining = sum(len(list((root / n / ".comm-node" / "outbox").glob("*.md"))) for n in names)
        if remaining:
            kills += 1
    assert kills >= 1, "the burst finished before any kill: make it bigger"
    proc = start_serve(root)
    try:
        wait_for(
            lambda: all(not list((root / n / ".comm-node" / "outbox").glob("*.md")) for n in names),
            timeout=60,
        )
    finally:
        stop(proc)
    got = delivered()
    doubled = {k: v for k, v in got.items() if v > 1}
    missing = set(expected) - set(got)
    assert not doubled, f"{len(doubled)} doubled, e.g. {next(iter(doubled.items()))}"
    assert not missing, f"{len(missing)} lost, e.g. {next(iter(missing))}"
    assert got == expected
    assert not any(
        b.startswith("b-") for n in names for b in os.listdir(root / n / ".comm-node" / "inbox")
    ), "nothing bounced"
    # Budgets are debited once per message, as the ledger says after all the crashes.
    spent = sum(
        json.loads((root / ".comm-node" / "guarded" / f"budget.{n}.json").read_text())[
            "spent_tokens"
        ]
        for n in names
    )
    from comm_node_tui.protocol.messages import estimate_tokens

    assert spent == sum(estimate_tokens(body) * n for (_r, body), n in expected.items())
