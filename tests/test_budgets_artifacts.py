"""Budget requests and grants (policy, operator, restarts) and artifact publishing."""

from __future__ import annotations

import json
import os

import pytest

from comm_node_tui.coordination.coordinator import artifact_name_problem
from comm_node_tui.protocol.messages import render
from tests.conftest import write_workspace


def route(root, engine_for, sender, to, body, n=1, **meta):
    eng = engine_for(root)
    box = root / sender / ".comm-node" / "outbox"
    box.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = box / f"m-{sender}-{i}-{len(body)}.md"
        p.write_text(render({"id": p.stem, "to": [to], "type": "info", **meta}, body))
        os.utime(p, (1, 1))
    eng.scan()
    eng.stop()


def test_request_granted_while_efficient_then_denied_with_reason(tmp_path, cli, engine_for):
    root = write_workspace(
        tmp_path / "ws",
        budget=2000,
        extra="[budgets]\nmax_auto_grant_tokens = 1000\nmin_efficiency = 2\n",
    )
    be = root / "backend"
    res = cli("budget", "request", "500", "--reason", "long spec review", "--json", cwd=be)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"domain": "backend", "granted": 500, "by": "policy"}
    res = cli("budget", "request", "5000", "--reason", "more", cwd=be)
    assert res.returncode == 3 and "over the 1000 a request may get" in res.stderr
    # Spend 1,200 tokens on 3 messages: 2.5 per 1k tokens is efficient enough.
    route(root, engine_for, "backend", "docs", "x" * 1600, n=3)
    view = {b["domain"]: b for b in json.loads(cli("budget", "show", "--json", cwd=be).stdout)}
    assert view["backend"]["spent_tokens"] == 1200 and view["backend"]["granted_tokens"] == 500
    assert view["backend"]["remaining_tokens"] == 1300 and view["backend"]["efficiency"] == 2.5
    # One long message more: 4 messages for 2,400 tokens = 1.67 per 1k, under 2.
    route(root, engine_for, "backend", "docs", "y" * 4800)
    res = cli("budget", "request", "100", "--reason", "again", cwd=be)
    assert res.returncode == 3 and "efficiency is 1.67" in res.stderr
    assert "comm-node budget grant backend 100" in res.stderr
    # The operator overrides.
    assert cli("budget", "grant", "backend", "100", "--reason", "ok", cwd=root).returncode == 0
    view = {b["domain"]: b for b in json.loads(cli("budget", "show", "--json", cwd=be).stdout)}
    assert view["backend"]["granted_tokens"] == 600
    events = (root / ".comm-node" / "events.jsonl").read_text()
    assert events.count("budget.granted") == 2 and events.count("budget.denied") == 2


def test_answers_count_towards_the_askers_efficiency(tmp_path, engine_for):
    root = write_workspace(tmp_path / "ws", budget=100000)
    route(root, engine_for, "backend", "docs", "question?")
    route(root, engine_for, "docs", "backend", "answer!", reply_to="m-backend-0-9")
    from comm_node_tui.coordination.coordinator import budget_view
    from comm_node_tui.workspace.discovery import load_workspace

    view = {b["domain"]: b for b in budget_view(load_workspace(str(root)))}
    assert view["backend"]["answers_received"] == 1
    assert view["docs"]["answers_received"] == 0


def test_grants_raise_the_routers_limit_and_survive_restart(tmp_path, cli, engine_for):
    root = write_workspace(tmp_path / "ws", budget=10)
    route(root, engine_for, "backend", "docs", "z" * 80)  # 20 tokens > 10: bounced
    bounces = list((root / "backend" / ".comm-node" / "inbox").glob("b-*.md"))
    assert len(bounces) == 1 and "over budget" in bounces[0].read_text()
    cli("budget", "grant", "backend", "100", cwd=root)
    route(root, engine_for, "backend", "docs", "w" * 80)
    assert len(list((root / "docs" / ".comm-node" / "inbox").glob("*.md"))) == 1
    budget = json.loads((root / "backend" / ".comm-node" / "budget.json").read_text())
    assert budget["budget_tokens"] == 110 and budget["spent_tokens"] == 20


@pytest.mark.parametrize(
    "name", ["../x", "a/b", ".hidden", "", "manifest.json", "a\x00b", "x" * 121, "tab\there"]
)
def test_bad_artifact_names(name):
    assert artifact_name_problem(name) is not None


def test_publish_copies_with_hash_and_refuses_outside(tmp_path, cli):
    root = write_workspace(tmp_path / "ws")
    be = root / "backend"
    (be / "contract.yaml").write_text("openapi: 3.1.0\n")
    res = cli("artifact", "publish", "contract.yaml", "--name", "api.yaml", "--json", cwd=be)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    import hashlib

    assert out["sha256"] == hashlib.sha256(b"openapi: 3.1.0\n").hexdigest()
    assert (be / ".comm-node" / "artifacts" / "api.yaml").read_text() == "openapi: 3.1.0\n"
    listed = json.loads(cli("artifact", "list", "--json", cwd=root).stdout)
    assert [(a["domain"], a["name"]) for a in listed] == [("backend", "api.yaml")]
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (be / "link.txt").symlink_to(outside)
    for args in (["publish", str(outside)], ["publish", "link.txt"]):
        res = cli("artifact", *args, cwd=be)
        assert res.returncode == 4 and "outside the workspace" in res.stderr
    res = cli("artifact", "publish", "contract.yaml", "--name", "../../x", cwd=be)
    assert res.returncode == 1 and "path separator" in res.stderr
