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
    budget = json.loads((root / ".comm-node" / "guarded" / "budget.backend.json").read_text())
    assert budget["budget_tokens"] == 110 and budget["spent_tokens"] == 20


def grant(domain: str, tokens: int, by: str = "operator") -> dict:
    return {"domain": domain, "tokens": tokens, "by": by, "reason": "r", "ts": "t"}


def granted(root) -> dict[str, int]:
    from comm_node_tui.coordination.coordinator import budget_view
    from comm_node_tui.workspace.discovery import load_workspace

    return {b["domain"]: b["granted_tokens"] for b in budget_view(load_workspace(str(root)))}


def test_an_older_comm_nodes_grants_count_until_the_next_grant_moves_them_all(tmp_path, engine_for):
    """Before guarded/ the grants were `.comm-node/budget-grants.json`: they still count
    (the router lets the domain spend them), and the operator's next grant moves every one
    of them into guarded/ beside the new one."""
    from comm_node_tui.coordination.coordinator import Coordinator, grant_budget
    from comm_node_tui.workspace.discovery import load_workspace

    root = write_workspace(tmp_path / "ws", budget=10)
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    old = [grant("backend", 100), grant("docs", 5, by="policy")]
    (state / "budget-grants.json").write_text(json.dumps({"grants": old}))
    route(root, engine_for, "backend", "docs", "w" * 80)  # 20 tokens: over 10, within 110
    assert [p.name for p in (root / "docs" / ".comm-node" / "inbox").glob("*.md")] != []
    assert granted(root) == {"backend": 100, "docs": 5, "frontend": 0}
    grant_budget(Coordinator(load_workspace(str(root))), "docs", 7, "after the upgrade")
    assert not (state / "budget-grants.json").exists()
    moved = json.loads((state / "guarded" / "budget-grants.json").read_text())["grants"]
    assert moved[:2] == old and (moved[2]["domain"], moved[2]["tokens"]) == ("docs", 7)
    assert granted(root) == {"backend": 100, "docs": 12, "frontend": 0}


def budgets(root) -> dict[str, tuple[int, int]]:
    """domain -> (granted, spent) as every reader sees them."""
    from comm_node_tui.coordination.coordinator import budget_view
    from comm_node_tui.workspace.discovery import load_workspace

    view = budget_view(load_workspace(str(root)))
    return {b["domain"]: (b["granted_tokens"], b["spent_tokens"]) for b in view}


def test_a_sandboxed_start_moves_grants_and_journal_and_files_planted_at_the_old_place_are_not_read(
    tmp_path, monkeypatch
):
    """`.comm-node/` stays writable to a sandboxed agent: write_sandbox moves an older
    comm-node's grants and routing journal into guarded/ (byte for byte) before the agent
    starts, or leaves empty ones there, so files the agent makes at the old place (a grant,
    a journal that says it spent nothing) are never read."""
    from comm_node_tui.adapters.claude.sandbox import write_sandbox
    from comm_node_tui.workspace.discovery import load_workspace

    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    forged = {
        "budget-grants.json": json.dumps({"grants": [grant("backend", 10**9)]}),
        "ledger.jsonl": json.dumps({"carry": "backend", "spent": -(10**9)}) + "\n",
    }
    older = {
        "budget-grants.json": json.dumps({"grants": [grant("backend", 100)]}, indent=3),
        "ledger.jsonl": '{"id":"m-1","from":"backend","cost":5,"outcome":"routed"}\n',
    }
    empty = {"budget-grants.json": '{"grants":[]}\n', "ledger.jsonl": ""}
    for case, before, expected in (("upgraded", older, (100, 5)), ("fresh", empty, (0, 0))):
        root = write_workspace(tmp_path / case, budget=10, agents="sandbox = true")
        state = root / ".comm-node"
        state.mkdir(exist_ok=True)
        if before is older:
            for name, text in older.items():
                (state / name).write_text(text)
        ws = load_workspace(str(root))
        write_sandbox(ws, ws.domains["backend"])
        for name, text in before.items():
            assert (state / "guarded" / name).read_text() == text, (case, name)
            assert not (state / name).exists(), (case, name)
            (state / name).write_text(forged[name])  # the agent's command
        assert budgets(root)["backend"] == expected, case
        write_sandbox(ws, ws.domains["backend"])  # the next start: guarded/ wins again
        for name, text in before.items():
            assert (state / "guarded" / name).read_text() == text, (case, name)
        assert budgets(root)["backend"] == expected, case
    # links an agent (unsandboxed before) left at the old place, to files it keeps writing:
    # dropped, never moved into guarded/ to be read through there
    root = write_workspace(tmp_path / "linked", budget=10, agents="sandbox = true")
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    for name, text in forged.items():
        (tmp_path / f"agent-{name}").write_text(text)
        (state / name).symlink_to(tmp_path / f"agent-{name}")
    ws = load_workspace(str(root))
    write_sandbox(ws, ws.domains["backend"])
    for name, text in empty.items():
        assert not (state / "guarded" / name).is_symlink(), name
        assert (state / "guarded" / name).read_text() == text, name
        assert not os.path.lexists(state / name), name
    assert budgets(root)["backend"] == (0, 0)


def test_an_older_comm_nodes_journal_counts_and_the_engines_start_moves_it(tmp_path, engine_for):
    """Before guarded/ the routing journal was `.comm-node/ledger.jsonl`: what it says was
    spent still counts against the budget, and the engine's start moves it into guarded/
    with nothing lost."""
    root = write_workspace(tmp_path / "ws", budget=100)
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    old = [
        {"carry": "docs", "spent": 7, "sent": 1, "answered": 0},
        {"id": "m-old", "from": "backend", "cost": 60, "outcome": "routed"},
    ]
    (state / "ledger.jsonl").write_text("".join(json.dumps(x) + "\n" for x in old))
    assert budgets(root)["backend"] == (0, 60) and budgets(root)["docs"] == (0, 7)
    route(root, engine_for, "backend", "docs", "z" * 80)  # 20 tokens: 80 of 100
    route(root, engine_for, "backend", "docs", "y" * 120)  # 30 more: over 100, bounced (not spent)
    assert not (state / "ledger.jsonl").exists()
    assert (state / "guarded" / "ledger.jsonl").exists()
    assert budgets(root)["backend"] == (0, 80) and budgets(root)["docs"] == (0, 7)
    assert len(list((root / "docs" / ".comm-node" / "inbox").glob("*.md"))) == 1
    bounces = list((root / "backend" / ".comm-node" / "inbox").glob("b-*.md"))
    assert len(bounces) == 1 and "over budget" in bounces[0].read_text()


def test_grants_are_never_read_or_written_through_a_link_at_guarded(tmp_path):
    """guarded/ as a link (an agent's, made before the folder existed): the grants are read
    from the old place, not through it, and the next grant replaces the link with a folder,
    keeping the old grants."""
    from comm_node_tui.coordination.coordinator import Coordinator, grant_budget
    from comm_node_tui.workspace.discovery import load_workspace

    root = write_workspace(tmp_path / "ws", budget=10, cached=False)  # no guarded/ yet
    state = root / ".comm-node"
    state.mkdir(exist_ok=True)
    (state / "budget-grants.json").write_text(json.dumps({"grants": [grant("backend", 100)]}))
    elsewhere = root / "backend" / "mine"
    elsewhere.mkdir()
    forged = json.dumps({"grants": [grant("backend", 10**9)]})
    (elsewhere / "budget-grants.json").write_text(forged)
    (state / "guarded").symlink_to(elsewhere)
    assert granted(root)["backend"] == 100
    grant_budget(Coordinator(load_workspace(str(root))), "backend", 1, "more")
    assert not (state / "guarded").is_symlink() and (state / "guarded").is_dir()
    assert (elsewhere / "budget-grants.json").read_text() == forged
    assert granted(root)["backend"] == 101


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


PAUSED = {"limit": 10, "used": 12, "exhausted": True, "policy": "pause"}


def refused_by_the_hook(root, domain: str = "backend") -> bool:
    """The hook refuses the agent's next tool call for its spent work budget."""
    from comm_node_tui.hooks.handler import handle

    payload = {
        "hook_event_name": "PreToolUse",
        "cwd": str(root / domain),
        "session_id": "s",
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
    }
    _code, out, _err = handle(payload)
    if not out:
        return False
    found = json.loads(out)["hookSpecificOutput"]
    assert "work budget is spent" in found["permissionDecisionReason"], found
    return found["permissionDecision"] == "deny"


def budget_file(work: dict | None) -> str:
    return json.dumps({"domain": "backend", "work": work}, indent=1) + "\n"


def test_the_work_budgets_pause_is_read_in_guarded_and_never_lifted_at_the_old_place(
    tmp_path, cli, engine_for
):
    """The engine writes each domain's budget into guarded/ (walled from a sandboxed agent
    as a folder), not into the domain's own folder, where the agent may write: a file it
    makes there, saying it is not paused, lifts nothing. An older comm-node's pause at the
    old place holds until the engine's first write, which drops it."""
    root = write_workspace(tmp_path / "ws")
    legacy = root / "backend" / ".comm-node" / "budget.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(budget_file(PAUSED))  # an older comm-node's engine paused it
    assert refused_by_the_hook(root)
    eng = engine_for(root)  # its start writes every domain's budget, as it now stands
    mine = root / ".comm-node" / "guarded" / "budget.backend.json"
    assert json.loads(mine.read_text())["work"] is None and not legacy.exists()
    assert not refused_by_the_hook(root)
    eng.budgets.work["backend"] = PAUSED  # as the usage monitor holds it to the budget
    eng.budgets.touched("backend")
    eng.budgets.flush()
    assert refused_by_the_hook(root)
    legacy.write_text(budget_file(None))  # the agent's command
    assert refused_by_the_hook(root)
    info = json.loads(cli("whoami", "--json", cwd=root / "backend").stdout)
    assert info["budget"]["work"] == PAUSED


def test_a_sandboxed_start_moves_an_older_budget_into_guarded(tmp_path, monkeypatch):
    """write_sandbox moves an older comm-node's budget file (its engine's pause) into
    guarded/ byte for byte before the agent starts: a file the agent writes at the old
    place afterwards is never read. A link at the old place is not the engine's: dropped,
    not moved (guarded/ would read through it)."""
    from comm_node_tui.adapters.claude.sandbox import write_sandbox
    from comm_node_tui.workspace.discovery import load_workspace

    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    root = write_workspace(tmp_path / "ws", agents="sandbox = true")
    legacy = root / "backend" / ".comm-node" / "budget.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(budget_file(PAUSED))
    ws = load_workspace(str(root))
    write_sandbox(ws, ws.domains["backend"])
    mine = root / ".comm-node" / "guarded" / "budget.backend.json"
    assert mine.read_text() == budget_file(PAUSED) and not legacy.exists()
    legacy.write_text(budget_file(None))  # the agent's command
    assert refused_by_the_hook(root)
    write_sandbox(ws, ws.domains["backend"])  # the next start: guarded/ wins again
    assert mine.read_text() == budget_file(PAUSED) and not legacy.exists()
    assert refused_by_the_hook(root)

    docs_legacy = root / "docs" / ".comm-node" / "budget.json"
    docs_legacy.parent.mkdir(parents=True)
    mine_too = root / "docs" / "mine.json"
    mine_too.write_text(budget_file(None))
    docs_legacy.symlink_to(mine_too)
    write_sandbox(ws, ws.domains["docs"])
    assert not os.path.lexists(docs_legacy)
    assert not (root / ".comm-node" / "guarded" / "budget.docs.json").exists()


def test_the_budget_is_never_read_or_written_through_a_link_at_guarded(tmp_path, cli, engine_for):
    """guarded/ as a link (an agent's, made before the folder existed): the budget is read
    from the old place, not through it (the hook refuses anyway: the operator's pause reads
    such a link as everyone stopped), and the engine's next write replaces the link with a
    folder, writing nothing through it."""
    root = write_workspace(tmp_path / "ws", cached=False)  # no guarded/ yet
    state = root / ".comm-node"
    state.mkdir()
    legacy = root / "backend" / ".comm-node" / "budget.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(budget_file(PAUSED))
    elsewhere = root / "backend" / "mine"
    elsewhere.mkdir()
    forged = budget_file(None)
    (elsewhere / "budget.backend.json").write_text(forged)
    (state / "guarded").symlink_to(elsewhere)
    info = json.loads(cli("whoami", "--json", cwd=root / "backend").stdout)
    assert info["budget"]["work"] == PAUSED
    eng = engine_for(root)
    eng.budgets.work["backend"] = PAUSED
    eng.budgets.flush(everything=True)
    assert not (state / "guarded").is_symlink() and (state / "guarded").is_dir()
    assert (elsewhere / "budget.backend.json").read_text() == forged
    assert json.loads((state / "guarded" / "budget.backend.json").read_text())["work"] == PAUSED
    assert refused_by_the_hook(root)
