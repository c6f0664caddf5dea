"""Hand-offs (issue 17, item 5): what the SessionStart hook tells an agent about where it was,
through the real hook command in a subprocess, with a real task source, a real verify gate
failure, real locks and real mail; `whoami` and `task ready` show the held task; and
`comm-node handoff` asking the agent for its note and clearing its context."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.protocol.messages import render
from tests.conftest import cli_env, run_cli, write_workspace
from tests.test_layers import _loaded_by

AGENT = "backend"
ESC = "\x1b"

# A contract and a verify command that fails with terminal escapes in its output: the hand-off
# must carry the reason and the output's end, never the escapes.
TASKS = """\
[[tasks]]
id = "T1"
title = "the health endpoint \\u001b[2J(and more)"
domain = "backend"
done_when = ["GET /health answers 200", "the OpenAPI file lists /health"]
verify = ["printf '\\\\033[31mhealth check failed: expected 200 got 500\\\\n'; exit 3"]

[[tasks]]
id = "T2"
title = "another one"
domain = "backend"
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = write_workspace(tmp_path / "ws", extra='[tasks]\nsource = "native"\n')
    (root / "tasks.toml").write_text(TASKS)
    return root


def agent_cli(root: Path, *args: str, domain: str = AGENT) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=root / domain, env=cli_env(COMM_NODE_DOMAIN=domain), timeout=60)


def hook(root: Path, payload: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*comm_node_argv(), "hook"],
        cwd=root,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )


def session_start(root: Path, source: str, domain: str = AGENT) -> str | None:
    """The additionalContext the hook returns for SessionStart(source), or None."""
    res = hook(
        root,
        {
            "session_id": "s-" + source,
            "transcript_path": f"/home/u/.claude/projects/x/{source}.jsonl",
            "cwd": str(root / domain),
            "hook_event_name": "SessionStart",
            "source": source,
            "model": "claude-opus-5-5",
        },
    )
    assert res.returncode == 0, res.stderr
    if not res.stdout.strip():
        return None
    out = json.loads(res.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "SessionStart"
    return out["additionalContext"]


def deliver(root: Path, domain: str, ident: str, subject: str) -> None:
    box = root / domain / ".comm-node" / "inbox"
    box.mkdir(parents=True, exist_ok=True)
    (box / f"{ident}.md").write_text(
        render(
            {
                "id": ident,
                "from": "frontend",
                "to": [domain],
                "type": "request",
                "priority": "normal",
                "subject": subject,
            },
            "body",
        )
    )


def hold_with_a_failure(root: Path) -> None:
    """backend claims T1, fails its gate once, holds a lock and has two unread messages."""
    assert agent_cli(root, "task", "claim", "T1").returncode == 0
    res = agent_cli(root, "task", "done", "T1")
    assert res.returncode != 0 and "exited 3" in res.stderr + res.stdout
    assert agent_cli(root, "lock", "acquire", "src/api/**", "--reason", "health").returncode == 0
    deliver(root, AGENT, "m-1", "the old question")
    deliver(root, AGENT, "m-2", "please also return \x1b]0;pwned\x07 the version")


@pytest.mark.parametrize("source", ["startup", "resume", "clear", "compact"])
def test_every_session_start_hands_the_agent_where_it_was(root, source):
    hold_with_a_failure(root)
    text = session_start(root, source)
    assert text is not None
    assert "T1" in text and "the health endpoint" in text and "(and more)" in text
    assert "GET /health answers 200" in text and "the OpenAPI file lists /health" in text
    assert "comm-node task done T1" in text and "exit 3" in text  # the verify command
    assert "Last attempt failed" in text and "exited 3" in text
    assert "health check failed: expected 200 got 500" in text  # the output's end
    assert "Your locks: src/api/**" in text  # its lock
    assert "Unread mail: 2" in text and "please also return" in text
    assert "T2" not in text  # T2 is not held
    assert {"startup": "started", "resume": "resumed", "clear": "cleared", "compact": "compacted"}[
        source
    ] in text.splitlines()[0]
    # untrusted text: no escape or other control character reaches the model's context
    assert ESC not in text and "\x07" not in text
    assert all(c.isprintable() for c in text.replace("\n", ""))
    assert len(text) <= 2000


def test_an_agent_with_nothing_held_is_told_where_to_look(root):
    text = session_start(root, "startup")
    assert text is not None
    assert "You hold no task" in text and "comm-node task ready" in text
    assert "Unread mail" not in text and "locks" not in text


def test_the_hand_off_is_bounded_whatever_the_inputs(root):
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ndomain = "backend"\ntitle = "' + "x" * 5000 + '"\n'
        "done_when = [" + ", ".join(f'"criterion {i} ' + "y" * 400 + '"' for i in range(40)) + "]\n"
    )
    assert agent_cli(root, "task", "claim", "T1").returncode == 0
    for i in range(30):
        deliver(root, AGENT, f"m-{i:02}", "z" * 500)
    text = session_start(root, "compact")
    assert text is not None and len(text) <= 2000
    assert "T1" in text and "Unread mail: 30" in text


def test_the_note_written_at_a_hand_off_is_pointed_to(root):
    note = root / AGENT / ".comm-node" / "handoff.md"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text("I was halfway through the health endpoint.\n")
    text = session_start(root, "clear")
    assert text is not None
    assert ".comm-node/handoff.md" in text and "read it first" in text


def test_session_start_stays_free_of_heavy_imports(root):
    # the other events' imports are checked by tests/test_layers.py; SessionStart reads the
    # task source too and must still load nothing heavy (the agent CLI's config cache first)
    agent_cli(root, "whoami")
    hold_with_a_failure(root)
    payload = json.dumps(
        {
            "hook_event_name": "SessionStart",
            "source": "startup",
            "session_id": "s1",
            "cwd": str(root / AGENT),
        }
    )
    assert _loaded_by(["hook"], payload, root / AGENT) == set()


def test_whoami_and_task_ready_show_the_held_task(root):
    hold_with_a_failure(root)
    res = agent_cli(root, "whoami", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["task"]["id"] == "T1"
    assert info["task"]["contract"]["done_when"][0] == "GET /health answers 200"
    assert "exited 3" in info["task"]["last_failure"]["reason"]
    human = agent_cli(root, "whoami").stdout
    assert "task:   T1" in human and "done when: GET /health answers 200" in human
    ready = agent_cli(root, "task", "ready").stdout
    assert ready.splitlines()[0].startswith("holding: T1")
    assert "T2" in ready  # still listed as ready work
    assert json.loads(agent_cli(root, "task", "ready", "--json").stdout)[0]["id"] == "T2"


# ---- `comm-node handoff`: real tmux (private socket), the fake agent, the real CLI ---------
FAKE = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


@pytest.fixture
def panes_root(root, monkeypatch):
    import os

    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import wait_for

    socket = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    toml = root / "comm-node.toml"
    toml.write_text(
        toml.read_text().replace(
            'name = "backend"\npath = "backend"\n',
            f'name = "backend"\npath = "backend"\ncommand = "{FAKE} --log {root}/backend.log"\n',
        )
    )
    ap = AgentPanes(load_workspace(str(root)))
    ap.up(["backend"])
    wait_for(lambda: "❯" in ap.peek("backend"), what="the agent at its prompt")
    yield root
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def submitted(root: Path) -> list[str]:
    p = root / "backend.log"
    lines = p.read_text().splitlines() if p.exists() else []
    return [r["text"] for r in map(json.loads, lines) if r.get("event") == "submit"]


def handoff_cli(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "handoff", "backend", *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def test_handoff_asks_for_the_note_then_clears_once_it_is_written(panes_root):
    from tests.waiting import wait_for

    root = panes_root
    note = root / AGENT / ".comm-node" / "handoff.md"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text("an old note\n")  # an old note does not count: a new one must be written
    proc = handoff_cli(root, "--yes", "--timeout", "60")
    wait_for(lambda: submitted(root), what="the hand-off request typed")
    request = submitted(root)[0]
    assert request.startswith("comm-node hand-off") and ".comm-node/handoff.md" in request
    # nothing is cleared while the note is not written
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)
    assert submitted(root) == [request]
    note.write_text("T1: the endpoint answers 500; next: fix the handler\n")  # the agent writes
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "context cleared" in out
    assert submitted(root) == [request, "/clear"]  # typed as a command, after the note
    events = (root / ".comm-node" / "events.jsonl").read_text()
    assert '"agent.handoff"' in events


def test_handoff_without_a_note_never_clears(panes_root):
    root = panes_root
    # a short wait for the note: the agent never writes one, however long it is given
    # (the request is typed first, to a prompt at rest, whatever the time left)
    proc = handoff_cli(root, "--yes", "--timeout", "1")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "wrote no hand-off note" in err
    assert "not cleared" in err
    assert "/clear" not in submitted(root)


def test_handoff_needs_the_operators_confirmation(panes_root):
    root = panes_root
    proc = handoff_cli(root)  # no terminal to ask, no --yes
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "--yes" in err
    assert submitted(root) == []  # nothing was typed


def test_broken_task_files_never_cost_the_session_its_state(root):
    hold_with_a_failure(root)
    (root / "tasks.toml").write_text("[[tasks]\nthis is not toml \x00")
    overlay = root / ".comm-node" / "tasks.json"  # the claims and attempts overlay
    assert overlay.is_file()
    overlay.write_text("{ garbage")
    text = session_start(root, "resume")
    assert text is not None and "You hold no task" in text  # what can be read is still said
    assert "Your locks: src/api/**" in text
    status = json.loads((root / AGENT / ".comm-node" / "status.json").read_text())
    assert status["state"] == "idle" and status["session_id"] == "s-resume"


async def test_the_rooms_h_key_asks_then_hands_off(panes_root):
    from comm_node_tui.tui.app import ControlRoom
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import until

    root = panes_root
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.query_one("#agents").row_count == 3)
        app.query_one("#agents").focus()
        # the first row is backend (the domains' order); n keeps everything as it was
        await pilot.press("h")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ != "ConfirmScreen")
        assert submitted(root) == []
        await pilot.press("h")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: len(submitted(root)) == 1)
        assert submitted(root)[0].startswith("comm-node hand-off")
        note = root / AGENT / ".comm-node" / "handoff.md"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text("where I was\n")  # the agent writes its note
        await until(pilot, lambda: submitted(root)[-1:] == ["/clear"])
        events = root / ".comm-node" / "events.jsonl"
        await until(pilot, lambda: '"agent.handoff"' in events.read_text())
