"""The agent CLI as agents run it: a subprocess in a domain directory, no engine needed."""

from __future__ import annotations

import json
import os

import pytest

from comm_node_tui.protocol.messages import split

MESSAGE_KEYS = {"id", "from", "to", "type", "task", "priority", "created", "read", "body"}


def test_send_queues_in_outbox_without_an_engine(ws_root, cli):
    res = cli(
        "send",
        "--to",
        "frontend,docs",
        "--type",
        "request",
        "--task",
        "T1",
        "--priority",
        "high",
        "--budget",
        "50",
        "review the contract",
        cwd=ws_root / "backend",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("queued m-") and "frontend,docs" in res.stdout
    [path] = (ws_root / "backend" / ".comm-node" / "outbox").glob("*.md")
    meta, body = split(path.read_text())
    assert meta["from"] == "backend" and meta["to"] == ["frontend", "docs"]
    assert meta["type"] == "request" and meta["task"] == "T1" and meta["priority"] == "high"
    assert meta["token_budget"] == 50 and meta["id"] == path.stem
    assert body == "review the contract\n"


@pytest.mark.parametrize(
    "text",
    ["-leading dash", "trailing;", "#{pane_id} $(rm -rf /) `id`", "C-c Enter", "tabs\tand ünï"],
)
def test_send_text_is_literal(ws_root, cli, text):
    res = cli("send", "--to", "docs", "--json", "--", text, cwd=ws_root / "frontend")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["body"] == text + "\n"


def test_send_reads_stdin_with_dash(ws_root, cli):
    body = "line one\nline two\n---\nnot front matter\n"
    res = cli("send", "--to", "docs", "--json", "-", cwd=ws_root / "backend", input=body)
    assert res.returncode == 0, res.stderr
    [path] = (ws_root / "backend" / ".comm-node" / "outbox").glob("*.md")
    assert split(path.read_text())[1] == body


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["send", "--to", "ghost", "x"], 1, "unknown domain 'ghost'"),
        (["send", "--to", "backend", "x"], 1, "cannot send a message to itself"),
        (["send", "--to", "docs", "--budget", "1", "a long message body"], 1, "over --budget 1"),
        (["send", "--to", "docs", "   "], 2, "the message is empty"),
        (["send", "x"], 2, "--to"),
        (["send", "--to", "docs", "--priority", "now", "x"], 2, "invalid choice"),
        (["read", "m-nope"], 1, "no message 'm-nope'"),
        (["read", "../../etc/passwd"], 1, "is not a message id"),
        (["status", "set", "dancing"], 2, "STATE must be one of"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_with_documented_exit_codes(ws_root, cli, args, code, needle):
    res = cli(*args, cwd=ws_root / "backend")
    assert res.returncode == code, (res.stdout, res.stderr)
    assert needle in res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_inbox_read_and_json_shapes(ws_root, cli, engine_for):
    eng = engine_for(ws_root)
    for text in ("first", "second"):
        assert (
            cli(
                "send", "--to", "frontend", "--task", "T2", text, cwd=ws_root / "backend"
            ).returncode
            == 0
        )
    eng.scan()
    res = cli("inbox", "--json", cwd=ws_root / "frontend")
    msgs = json.loads(res.stdout)
    assert [m["body"] for m in msgs] == ["first\n", "second\n"]
    assert all(set(m) >= MESSAGE_KEYS for m in msgs)
    assert all(m["read"] is False and m["to"] == ["frontend"] for m in msgs)
    first = msgs[0]["id"]
    shown = cli("read", first[:-4], cwd=ws_root / "frontend")  # a unique prefix is enough
    assert shown.returncode == 0 and "from: backend" in shown.stdout and "first" in shown.stdout
    unread = json.loads(cli("inbox", "--unread", "--json", cwd=ws_root / "frontend").stdout)
    assert [m["id"] for m in unread] == [msgs[1]["id"]]
    everything = json.loads(cli("inbox", "--json", cwd=ws_root / "frontend").stdout)
    assert [m["read"] for m in everything] == [True, False]
    again = cli("read", first, "--json", cwd=ws_root / "frontend")
    assert json.loads(again.stdout)["read"] is True
    text = cli("inbox", cwd=ws_root / "frontend").stdout
    assert "2 messages, 1 unread" in text


def test_status_set_merges_and_refreshes_heartbeat(ws_root, cli):
    status_file = ws_root / "docs" / ".comm-node" / "status.json"
    status_file.parent.mkdir(parents=True)
    status_file.write_text(json.dumps({"session_id": "abc", "state": "idle"}))
    res = cli(
        "status",
        "set",
        "busy",
        "--task",
        "T3",
        "--progress",
        "half way",
        "--json",
        cwd=ws_root / "docs",
    )
    assert res.returncode == 0, res.stderr
    st = json.loads(status_file.read_text())
    assert st["state"] == "busy" and st["task"] == "T3" and st["progress"] == "half way"
    assert st["session_id"] == "abc" and st["domain"] == "docs"
    assert st["last_heartbeat"].endswith("Z")
    assert oct(status_file.stat().st_mode & 0o777) == "0o600"
    # A garbage status.json is replaced, never fatal to the agent.
    status_file.write_bytes(b"\x00garbage{")
    assert cli("status", "set", "idle", cwd=ws_root / "docs").returncode == 0
    assert json.loads(status_file.read_text())["state"] == "idle"


def test_status_show_lists_every_agent(ws_root, cli):
    cli("status", "set", "blocked", "--task", "T9", cwd=ws_root / "frontend")
    (ws_root / "docs" / ".comm-node").mkdir(parents=True)
    (ws_root / "docs" / ".comm-node" / "status.json").write_text("[1, 2")
    res = cli("status", "--json", cwd=ws_root)
    assert res.returncode == 0, res.stderr
    agents = {a["name"]: a for a in json.loads(res.stdout)["agents"]}
    assert agents["frontend"]["state"] == "blocked" and agents["frontend"]["task"] == "T9"
    assert agents["backend"]["state"] == "unknown"
    assert "not valid JSON" in agents["docs"]["problem"]


def test_whoami(ws_root, cli, engine_for):
    engine_for(ws_root)  # writes the budget (guarded/) and registry.json
    res = cli("whoami", "--json", cwd=ws_root / "frontend")
    info = json.loads(res.stdout)
    assert info["domain"] == "frontend" and info["role"] == "the frontend role"
    assert info["budget"]["unlimited"] is True and info["unread"] == 0
    assert info["workspace"] == os.path.realpath(ws_root)
    reg = json.loads((ws_root / "frontend" / ".comm-node" / "registry.json").read_text())
    assert {p["name"] for p in reg["peers"]} == {"backend", "docs"}
    text = cli("whoami", cwd=ws_root / "frontend").stdout
    assert "frontend in test-proj" in text and "peers:  backend, docs" in text
