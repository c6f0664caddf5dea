"""The room at scale (issue 22, item 4): a long chain of dependent tasks, a large event log,
a status change at 200 agents, and a viewer that reads only the files that changed.

Timings are the benchmark's (bench/control_room.py); these tests assert what the operator
sees, with bounded waits."""

from __future__ import annotations

from pathlib import Path

import pytest

from comm_node_tui.engine.world import TaskNode
from comm_node_tui.tui.widgets.tasks import longest_chain
from tests.test_snapshots import SIZE, build, room, settle
from tests.waiting import until


def node(*deps: str, status: str = "open") -> TaskNode:
    return TaskNode(
        title="t", status=status, domain=None, assignee=None, priority=2, parent=None, deps=deps
    )


def test_the_longest_chain_of_a_plan_longer_than_the_recursion_limit():
    graph = {f"T{i}": node(*([f"T{i - 1}"] if i else [])) for i in range(5000)}
    assert longest_chain(graph) == [f"T{i}" for i in range(5000)]


def test_the_longest_chain_skips_done_tasks_and_stops_at_a_cycle():
    graph = {
        "A": node(),
        "B": node("A"),
        "C": node("B", "X"),  # X: not in the plan
        "D": node("C", status="closed"),
        "E": node("D"),
        "P": node("Q"),
        "Q": node("P"),  # a cycle: the chain stops where it comes round
    }
    assert longest_chain(graph) == ["A", "B", "C"]
    # as before the walk had its own stack: the cycle's first task ends it again
    assert longest_chain({"P": graph["P"], "Q": graph["Q"]}) == ["P", "Q", "P"]


@pytest.fixture
def snap_ws(tmp_path, monkeypatch):
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-scale-never-started")
    return build(tmp_path / "ws")


async def test_a_plan_with_a_chain_of_2000_tasks_fills_the_task_tree(snap_ws: Path):
    """Before, the panel's chain walk raised RecursionError and the tree stayed empty."""
    (snap_ws / "tasks.toml").write_text(
        "".join(
            f'[[tasks]]\nid = "C{i}"\ntitle = "step {i}"\ndomain = "backend"\n'
            + (f'depends_on = ["C{i - 1}"]\n' if i else "")
            for i in range(2000)
        )
    )
    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one("#tasks").tree
        await until(pilot, lambda: len(tree.root.children) == 2000)
        first = tree.root.children[0]
        assert str(first.label).startswith("◇ C0")  # ready, and on the longest chain
        assert first.label.spans and any("bold" in str(s.style) for s in first.label.spans)


# ---- a viewer: another process holds the engine ---------------------------------------------
def test_status_reads_parse_a_file_again_only_when_it_changed(tmp_path):
    from comm_node_tui.engine.world import StatusReads
    from comm_node_tui.protocol.status import update_status

    path = str(tmp_path / "status.json")
    reads = StatusReads()
    assert reads.read(path) == {}  # missing: as read_status
    update_status(path, "docs", state="busy", progress="one")
    first = reads.read(path)
    assert first["progress"] == "one" and reads.read(path) is first  # not parsed again
    update_status(path, "docs", progress="two")
    assert reads.read(path)["progress"] == "two"
    Path(path).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        reads.read(path)


def test_a_viewer_is_told_of_a_status_change_without_waiting_for_its_timer(snap_ws: Path):
    """Before, a viewer saw a status change only at its next timed refresh (every 5 s)."""
    import threading

    from comm_node_tui.engine.pidlock import EngineLock
    from comm_node_tui.protocol.status import update_status
    from comm_node_tui.tui.bridge import EngineBridge
    from comm_node_tui.workspace.discovery import load_workspace
    from tests.waiting import wait_for

    ws = load_workspace(str(snap_ws))
    lock = EngineLock(ws.paths.engine_lock)
    lock.acquire()  # as `comm-node serve` would: the bridge below only watches
    changed = threading.Event()
    bridge = EngineBridge(ws, lambda _ev: None, on_change=changed.set)
    try:
        bridge.start()
        assert bridge.viewer_of is not None and bridge.engine is None
        before = bridge.snapshot()
        wait_for(lambda: bridge._watcher is not None and bridge._watcher.is_alive())
        # the watcher arms its notifications in its own thread: write until one is seen
        n = 0

        def write_and_look() -> bool:
            nonlocal n
            n += 1
            update_status(ws.domains["docs"].paths.status, "docs", progress=f"step {n}")
            return changed.wait(0.5)

        wait_for(write_and_look, what="the viewer's on_change after a status write")
        after = bridge.snapshot()
        assert after.agent("docs").progress == f"step {n}"
        assert after.task_graph is before.task_graph  # the same tasks: the graph kept
    finally:
        bridge.stop()
        lock.release()


def test_overlapping_world_reads_load_the_tasks_once(tmp_path):
    """Reads the room starts while one is still loading the tasks wait for it and get its
    task graph (they each parsed the whole plan again: seconds at 20,000 tasks)."""
    import threading

    from comm_node_tui.tui.bridge import EngineBridge
    from comm_node_tui.workspace.discovery import load_workspace

    root = build(tmp_path / "ws")
    with (root / "tasks.toml").open("a") as fh:  # a plan that takes a while to load
        for i in range(3000):
            fh.write(f'[[tasks]]\nid = "X{i}"\ntitle = "x {i}"\ndomain = "backend"\n')
    bridge = EngineBridge(load_workspace(str(root)), lambda _ev: None)  # never started: a viewer
    start = threading.Barrier(4)
    graphs = []

    def read() -> None:
        start.wait()
        graphs.append(bridge.snapshot().task_graph)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(graphs) == 4 and "X2999" in graphs[0]
    assert all(g is graphs[0] for g in graphs)


async def test_the_pane_read_again_unchanged_is_not_drawn_again():
    """A viewer reads the followed pane every second: the same screen again is not shown
    again (each show was a layout pass of the whole room, and scrolled the operator back to
    the end of the pane they were reading); a changed screen is."""
    from textual.app import App

    from comm_node_tui.tui.widgets.preview import PreviewPanel

    class Pane(App):  # the panel alone: in the room, the agent under the cursor is followed
        def compose(self):
            yield PreviewPanel()

    app = Pane()
    async with app.run_test(size=(80, 20)) as pilot:
        preview = app.query_one(PreviewPanel)
        # the panel laid out first, as in the room (a show before the first layout scrolled
        # to the end of a panel with no size yet, and stayed at the top: seen at load 16)
        await until(pilot, lambda: preview.size.height > 0)
        screen = "\n".join(f"line {i}" for i in range(150))
        preview.show("docs", screen)
        await until(pilot, lambda: preview.max_scroll_y > 0 and preview.scroll_y > 0)
        preview.scroll_home(animate=False)
        await until(pilot, lambda: preview.scroll_y == 0)
        preview.show("docs", screen)  # read again, unchanged
        await pilot.pause()
        assert preview.scroll_y == 0  # where the operator left it
        preview.show("docs", screen + "\nline 150")
        await until(pilot, lambda: preview.scroll_y == preview.max_scroll_y > 0)
        assert "line 150" in str(app.query_one("#pane-text").content)
