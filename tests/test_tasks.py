"""The task DAG: Beads' readiness rules on small fixtures, native tasks, claims, artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comm_node_tui.coordination.tasks import Readiness, load_beads_jsonl, load_native
from tests.conftest import cli_env, write_workspace

FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
PAST = (datetime.now(UTC) - timedelta(days=3)).isoformat().replace("+00:00", "Z")


def issue(id, status="open", deps=(), **extra) -> dict:
    rec = {
        "id": id,
        "title": f"title {id}",
        "status": status,
        "priority": 2,
        "issue_type": "task",
        "dependencies": [
            {
                "issue_id": id,
                "depends_on_id": t,
                "type": k,
                "created_at": PAST,
                "created_by": "x",
                "metadata": m,
            }
            for k, t, m in ((*d, "{}")[:3] for d in deps)
        ],
    }
    rec.update(extra)
    return rec


def ready_of(tmp_path: Path, records: list[dict], published=None) -> Readiness:
    path = tmp_path / "issues.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    tasks, problems = load_beads_jsonl(str(path), {"backend", "docs"})
    assert problems == []
    return Readiness(tasks, published)


@pytest.mark.parametrize(
    ("records", "ready"),
    [
        # blocks: an open target blocks; closed or pinned does not; a dangling edge never does.
        ([issue("a"), issue("b", deps=[("blocks", "a")])], {"a"}),
        ([issue("a", "closed"), issue("b", deps=[("blocks", "a")])], {"b"}),
        ([issue("a", "pinned"), issue("b", deps=[("blocks", "a")])], {"b"}),
        ([issue("b", deps=[("blocks", "ghost")])], {"b"}),
        ([issue("a", "in_progress"), issue("b", deps=[("conditional-blocks", "a")])], set()),
        # non-blocking and unknown edge types are tolerated and ignored
        (
            [
                issue("a"),
                issue(
                    "b",
                    deps=[
                        ("related", "a"),
                        ("discovered-from", "a"),
                        ("tracks", "a"),
                        ("some-future-type", "a"),
                    ],
                ),
            ],
            {"a", "b"},
        ),
        # a blocked parent blocks its children, transitively; a closed child is not blocked
        (
            [
                issue("x"),
                issue("p", deps=[("blocks", "x")]),
                issue("c", deps=[("parent-child", "p")]),
                issue("g", deps=[("parent-child", "c")]),
                issue("d", "closed", deps=[("parent-child", "p")]),
            ],
            {"x"},
        ),
        # an unblocked parent lets children be ready (children are parallel by default)
        (
            [
                issue("p"),
                issue("c1", deps=[("parent-child", "p")]),
                issue("c2", deps=[("parent-child", "p")]),
            ],
            {"p", "c1", "c2"},
        ),
        # waits-for: blocked while the gate has an open child ...
        (
            [
                issue("gate"),
                issue("k1", deps=[("parent-child", "gate")]),
                issue("k2", "closed", deps=[("parent-child", "gate")]),
                issue("w", deps=[("waits-for", "gate")]),
            ],
            {"gate", "k1"},
        ),
        # ... all children closed/pinned opens it ...
        (
            [
                issue("gate"),
                issue("k1", "closed", deps=[("parent-child", "gate")]),
                issue("k2", "pinned", deps=[("parent-child", "gate")]),
                issue("w", deps=[("waits-for", "gate")]),
            ],
            {"gate", "w"},
        ),
        # ... and with gate any-children one closed child is enough
        (
            [
                issue("gate"),
                issue("k1", deps=[("parent-child", "gate")]),
                issue("k2", "closed", deps=[("parent-child", "gate")]),
                issue("w", deps=[("waits-for", "gate", '{"gate": "any-children"}')]),
            ],
            {"gate", "k1", "w"},
        ),
        # a gate without children does not block
        ([issue("gate"), issue("w", deps=[("waits-for", "gate")])], {"gate", "w"}),
        # only status open is ready work
        (
            [
                issue("a", "in_progress"),
                issue("b", "hooked"),
                issue("c", "blocked"),
                issue("d", "deferred"),
                issue("e", "closed"),
                issue("f"),
            ],
            {"f"},
        ),
        # pinned (field or status) and ephemeral are never ready
        ([issue("a", pinned=True), issue("b", ephemeral=True), issue("c", ephemeral=False)], {"c"}),
        # excluded issue types
        (
            [
                issue(t, issue_type=t)
                for t in ("merge-request", "gate", "molecule", "message", "agent", "role", "rig")
            ]
            + [issue("epic", issue_type="epic"), issue("bug", issue_type="bug")],
            {"epic", "bug"},
        ),
        # defer_until in the future hides it, and its children; in the past it does not
        (
            [
                issue("a", defer_until=FUTURE),
                issue("b", defer_until=PAST),
                issue("c", deps=[("parent-child", "a")]),
            ],
            {"b"},
        ),
        # a parent given only by the `parent` field still counts
        ([issue("x"), issue("p", deps=[("blocks", "x")]), issue("c", parent="p")], {"x"}),
    ],
)
def test_beads_readiness_rules(tmp_path, records, ready):
    assert set(ready_of(tmp_path, records).ready) == ready


def test_reasons_and_unblocks(tmp_path):
    r = ready_of(
        tmp_path,
        [issue("a"), issue("b", deps=[("blocks", "a")]), issue("c", deps=[("parent-child", "b")])],
    )
    assert r.why_not_ready("b") == ["blocked by a (open)"]
    assert r.why_not_ready("c") == ["parent b is blocked"]
    assert r.unblocks("a") == ["b"]
    assert r.counts()["blocked"] == 2


def test_required_artifacts_gate_readiness(tmp_path):
    rec = issue("t", metadata={"required_artifacts": ["backend:api.yaml"]})
    assert ready_of(tmp_path, [rec]).ready == []
    assert ready_of(tmp_path, [rec], published={"backend:api.yaml", "api.yaml"}).ready == ["t"]
    assert "needs artifact backend:api.yaml" in ready_of(tmp_path, [rec]).why_not_ready("t")


def test_domain_from_label_then_assignee(tmp_path):
    path = tmp_path / "i.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                issue("a", labels=["x", "domain:docs"], assignee="backend"),
                issue("b", assignee="backend"),
                issue("c", assignee="some-human"),
            ]
        )
    )
    tasks, _ = load_beads_jsonl(str(path), {"backend", "docs"})
    assert [tasks[i].domain for i in "abc"] == ["docs", "backend", None]


def test_garbage_lines_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "issues.jsonl"
    path.write_bytes(
        b'{"id": "a", "title": "ok"}\nnot json\n[1]\n{"title": "no id"}\n\xff\xfe\n'
        b'{"id": "a", "title": "again"}\n'
    )
    tasks, problems = load_beads_jsonl(str(path), set())
    assert list(tasks) == ["a"] and tasks["a"].title == "again"
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6"]


def test_native_tasks_toml(tmp_path):
    path = tmp_path / "tasks.toml"
    path.write_text(
        '[[tasks]]\nid = "T1"\ntitle = "contract"\ndomain = "backend"\npriority = 1\n'
        '[[tasks]]\nid = "T2"\ntitle = "screens"\ndomain = "docs"\ndepends_on = ["T1"]\n'
        'required_artifacts = ["api.yaml"]\n'
        '[[tasks]]\nid = "T3"\ntitle = "x"\ndomain = "ghost"\ncolour = "red"\n'
        '[[tasks]]\ntitle = "no id"\n'
    )
    tasks, problems = load_native(str(path), {"backend", "docs"})
    assert list(tasks) == ["T1", "T2", "T3"]
    assert any("tasks[2] (T3).colour: unknown key" in p for p in problems)
    assert any("unknown domain 'ghost'" in p for p in problems)
    assert any("tasks[3].id: required" in p for p in problems)
    r = Readiness(tasks)
    assert r.ready == ["T1", "T3"]  # priority order
    tasks["T1"].status = "closed"
    assert Readiness(tasks, {"api.yaml"}).ready == ["T2", "T3"]


@pytest.fixture
def task_ws(tmp_path):
    root = write_workspace(
        tmp_path / "ws",
        extra='[tasks]\nsource = "native"\n',
        domain_extra={"frontend": 'imports = { backend = ["api.yaml"] }'},
    )
    (root / "tasks.toml").write_text(
        '[[tasks]]\nid = "T1"\ntitle = "API contract"\ndomain = "backend"\n'
        '[[tasks]]\nid = "T2"\ntitle = "login screen"\ndomain = "frontend"\n'
        'depends_on = ["T1"]\nrequired_artifacts = ["backend:api.yaml"]\n'
        '[[tasks]]\nid = "T3"\ntitle = "anyone"\n'
    )
    return root


def test_cli_task_flow(task_ws, cli):
    be, fe = task_ws / "backend", task_ws / "frontend"
    rows = json.loads(cli("task", "ready", "--json", cwd=be).stdout)
    assert [r["id"] for r in rows] == ["T1", "T3"]
    assert {"id", "title", "domain", "priority", "status"} <= set(rows[0])
    assert json.loads(cli("task", "ready", "--json", cwd=fe).stdout)[0]["id"] == "T3"
    res = cli("task", "claim", "T1", cwd=fe)
    assert res.returncode == 4 and "belongs to domain backend" in res.stderr
    res = cli("task", "claim", "T2", cwd=fe)
    assert res.returncode == 3 and "blocked by T1" in res.stderr
    assert cli("task", "claim", "T1", cwd=be).returncode == 0
    (be / "api.yaml").write_text("openapi: 3.1.0\n")
    res = cli("task", "done", "T1", "--artifact", "api.yaml", cwd=be)
    assert res.returncode == 0, res.stderr
    show = json.loads(cli("task", "show", "T2", "--json", cwd=fe).stdout)
    assert show["ready"] is True and show["blocked_by"] == []
    assert cli("task", "claim", "T2", cwd=fe).returncode == 0
    res = cli("task", "fail", "T2", "--reason", "the API has no logout", cwd=fe)
    assert res.returncode == 0
    listed = {r["id"]: r for r in json.loads(cli("task", "list", "--json", cwd=fe).stdout)}
    assert listed["T1"]["status"] == "closed" and listed["T2"]["status"] == "blocked"
    log = (task_ws / ".comm-node" / "events.jsonl").read_text()
    for t in ("task.claimed", "artifact.published", "task.done", "task.failed"):
        assert t in log


def test_claim_race_between_processes_has_one_winner(task_ws):
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "comm_node_tui",
                "task",
                "claim",
                "T3",
                "-d",
                d,
                "-w",
                str(task_ws),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for d in ("backend", "frontend", "docs") * 3
    ]
    results = [(p.wait(timeout=30), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    # the winner may "claim" again idempotently; everyone else gets 3
    winners = {
        d
        for (code, _), d in zip(results, ("backend", "frontend", "docs") * 3, strict=True)
        if code == 0
    }
    assert len(winners) == 1, results
    assert codes.count(0) == 3 and codes.count(3) == 6
    assert all("already claimed by" in err for code, err in results if code == 3)
