"""Notifications outside the room (engine/notify.py): a webhook POST to a real HTTP receiver
on 127.0.0.1, `notify-send` as a real script on PATH that records its argv, [notify] in
comm-node.toml typed and its secrets never shown. The engine is real; the prompts come
through the real hook CLI."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import get_args

import pytest

from comm_node_tui.engine.needs import NeedKind
from comm_node_tui.workspace.config import NotifyConfig, NotifyKind, parse_config
from comm_node_tui.workspace.settings import DEFAULTS, NOTIFY_KINDS, NotifySettings
from tests.conftest import run_cli, write_workspace
from tests.test_needs import ask_operator, hook
from tests.waiting import wait_for

SECRET = "tk_s3cr3t_topic_9a7"
TOKEN = "Bearer tok-42-never-shown"


class Receiver:
    """An HTTP server in a thread that records every request (method, path, headers, body)."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body.decode()}
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args) -> None:  # quiet in the test output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def notify_ws(tmp_path: Path, table: str) -> Path:
    return write_workspace(tmp_path / "ws", extra=f"[notify]\n{table}\n")


def prompt(root: Path, domain: str, command: str) -> None:
    hook(
        root,
        domain,
        "PermissionRequest",
        tool_name="Bash",
        tool_input={"command": command},
    )


def logs(root: Path) -> str:
    return "".join(p.read_text() for p in (root / ".comm-node").glob("*.jsonl"))


def test_a_permission_prompt_posts_once_and_the_rate_limit_holds(tmp_path, receiver, engine_for):
    url = f"http://127.0.0.1:{receiver.port}/{SECRET}"
    root = notify_ws(
        tmp_path,
        f'webhook = "{url}"\nmin_interval_s = 3600\ndesktop = false\n'
        f'headers = {{ Authorization = "{TOKEN}" }}\n',
    )
    eng = engine_for(root)  # its first list is taken as known: nothing waits yet anyway
    prompt(root, "backend", "make deploy")
    eng.scan()
    eng.notify()
    eng.tick()  # the same item again: not news
    eng.notifier.drain()
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req["path"] == f"/{SECRET}" and req["headers"]["Authorization"] == TOKEN
    assert req["body"] == "Bash: make deploy"
    assert req["headers"]["Title"] == "comm-node test-proj: backend needs you (permission)"
    assert req["headers"]["Tags"] == "permission"
    # a second prompt within min_interval_s: no second POST for the kind
    prompt(root, "frontend", "npm publish")
    eng.scan()
    eng.tick()
    # a question is another kind: it is told at once
    ask_operator(root, "docs", "Which style guide?")
    eng.scan()
    eng.tick()  # the engine's timers: a rescan, then the timers
    eng.notifier.drain()
    assert [r["headers"]["Tags"] for r in receiver.requests] == ["permission", "question"]
    assert SECRET not in logs(root) and TOKEN not in logs(root)


def test_json_format_and_the_kinds_that_notify(tmp_path, receiver, engine_for):
    root = notify_ws(
        tmp_path,
        f'webhook = "http://127.0.0.1:{receiver.port}/hook"\nformat = "json"\n'
        'kinds = ["question"]\nmin_interval_s = 0\ndesktop = false\n',
    )
    eng = engine_for(root)
    prompt(root, "backend", "make deploy")  # not a kind that notifies here
    ident = ask_operator(root, "frontend", "Ship it?")
    eng.scan()
    eng.tick()
    eng.notifier.drain()
    assert len(receiver.requests) == 1
    body = json.loads(receiver.requests[0]["body"])
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"
    assert (body["kind"], body["agent"], body["key"]) == (
        "question",
        "frontend",
        f"question:{ident}",
    )
    assert body["what"] == "question: Ship it?" and body["since"]


def test_a_dead_receiver_is_one_warn_event_and_never_the_secret(tmp_path, engine_for):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = notify_ws(
        tmp_path,
        f'webhook = "http://user:{SECRET}@127.0.0.1:{port}/{SECRET}?token={SECRET}"\n'
        f'min_interval_s = 0\ndesktop = false\ntimeout_s = 2\nheaders = {{ X-Key = "{TOKEN}" }}\n',
    )
    eng = engine_for(root)
    for i, domain in enumerate(("backend", "frontend", "docs")):
        prompt(root, domain, f"step {i}")
        eng.scan()
        eng.tick()
        eng.notifier.drain()
    assert eng.notifier.sent == 3  # each was tried: the engine went on
    warned = [
        json.loads(x)
        for x in (root / ".comm-node" / "events.jsonl").read_text().splitlines()
        if '"notify.failed"' in x
    ]
    assert len(warned) == 1 and warned[0]["level"] == "warn"
    assert "http://127.0.0.1:" in warned[0]["msg"] and "/***" in warned[0]["msg"]
    assert SECRET not in logs(root) and TOKEN not in logs(root)


def test_notify_send_gets_the_item_as_plain_argv(tmp_path, monkeypatch, engine_for):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "argv.jsonl"
    script = bin_dir / "notify-send"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(seen)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = notify_ws(tmp_path, "min_interval_s = 0\n")  # no webhook: notify-send alone
    eng = engine_for(root)
    assert eng.notifier.active()
    prompt(root, "backend", "-rf \x1b]0;title\x07 rm <b>&</b>")
    eng.scan()
    eng.tick()
    eng.notifier.drain()
    wait_for(seen.exists)
    argv = [json.loads(x) for x in seen.read_text().splitlines()]
    assert argv == [
        [
            "--app-name=comm-node",
            "--",
            "comm-node test-proj: backend needs you (permission)",
            # control characters gone, the daemon's markup escaped
            "Bash: -rf  ]0;title  rm &lt;b&gt;&amp;&lt;/b&gt;",
        ]
    ]


def test_no_channel_means_no_work(tmp_path, engine_for):
    eng = engine_for(notify_ws(tmp_path, "desktop = false\n"))  # and no webhook
    assert not eng.notifier.active()


def test_the_notify_table_is_typed_and_config_show_hides_its_secrets(tmp_path):
    assert tuple(get_args(NotifyKind)) == NOTIFY_KINDS == tuple(str(k) for k in NeedKind)
    for name, field in NotifyConfig.model_fields.items():
        default = field.get_default(call_default_factory=True)
        want = getattr(DEFAULTS.notify, name)
        assert (dict(want) if name == "headers" else want) == default, name
    with pytest.raises(Exception, match="http") as bad:
        parse_config(f'[project]\nname = "p"\n[notify]\nwebhook = "ftp://{SECRET}"\n')
    assert SECRET not in str(bad.value)
    with pytest.raises(Exception, match="kinds"):
        parse_config('[project]\nname = "p"\n[notify]\nkinds = ["everything"]\n')
    root = notify_ws(
        tmp_path,
        f'webhook = "https://ntfy.sh/{SECRET}"\nheaders = {{ Authorization = "{TOKEN}" }}\n',
    )
    shown = run_cli("config", "show", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert 'webhook = "https://ntfy.sh/***"' in shown.stdout
    assert 'Authorization = "***"' in shown.stdout
    as_json = run_cli("config", "show", "--json", cwd=root)
    assert as_json.returncode == 0, as_json.stderr
    for out in (shown.stdout, as_json.stdout, repr(NotifySettings(webhook=SECRET))):
        assert SECRET not in out and TOKEN not in out
