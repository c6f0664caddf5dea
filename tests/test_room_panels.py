"""The panels own their rows and say what happened as typed messages. A room that reads the
files (no engine, no tmux: the workspace of tests/test_snapshots.py), its world changed on
disk, then the panels and the messages they posted checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App, ComposeResult

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.protocol.events import Event
from comm_node_tui.tui.alerts import KickoffProgress, LockConflict, react
from comm_node_tui.tui.messages import AgentChosen, AgentHighlighted, EngineEvent
from comm_node_tui.tui.widgets.keyed_table import KeyedTable, diff_keys
from comm_node_tui.workspace.discovery import load_workspace
from tests.test_snapshots import SIZE, build, room, settle
from tests.waiting import until


@pytest.fixture
def snap_ws(tmp_path, monkeypatch):
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-panels-never-started")
    return build(tmp_path / "ws")


# ---- the keyed table -----------------------------------------------------------------------
def test_diff_keys():
    d = diff_keys(["a", "b", "c"], ["b", "c", "d"])
    assert (d.added, d.removed, d.reordered) == (("d",), ("a",), False)
    assert diff_keys(["a", "b"], ["b", "a"]).reordered
    assert diff_keys([], ["x", "y"]).added == ("x", "y")


class Table(KeyedTable):
    COLUMNS = (("Name", 6), ("Value", 6))

    def __init__(self) -> None:
        super().__init__(cursor_type="row")
        self.updated: list[tuple[str, str]] = []  # the cells repainted, to see only changes are

    def update_cell(self, row_key, column_key, value, **kwargs):
        self.updated.append((str(row_key), str(column_key)))
        return super().update_cell(row_key, column_key, value, **kwargs)


class One(App):
    def compose(self) -> ComposeResult:
        yield Table()


def rows(*pairs: tuple[str, str]) -> list[tuple[str, tuple[Text, Text]]]:
    return [(k, (Text(k), Text(v))) for k, v in pairs]


async def test_a_keyed_table_adds_updates_and_removes_rows_by_key():
    app = One()
    async with app.run_test() as pilot:
        table = app.query_one(Table)
        table.sync(rows(("a", "1"), ("b", "2"), ("c", "3")))
        table.move_cursor(row=2)
        await pilot.pause()
        assert table.sync(rows(("b", "2"), ("c", "30"), ("d", "4"))) == ("a",)
        assert [r.value for r in table.rows] == ["b", "c", "d"]
        assert table.updated == [("c", "Value")]  # b did not change, a went, d is new
        assert str(table.get_cell("c", "Value")) == "30"
        assert table.selected_key == "c"  # the cursor stays on its row
        table.sync(rows(("d", "4"), ("c", "30"), ("b", "2")))  # a new order: laid out again
        assert [r.value for r in table.rows] == ["d", "c", "b"] and table.selected_key == "c"
        table.sync([])
        assert table.row_count == 0 and table.selected_key is None


# ---- the alert rules -----------------------------------------------------------------------
def test_alert_rules():
    lost = react(Event("agent.lost", "docs: lost", agent="docs", level="error"))
    assert lost.mark == "docs" and lost.notice is not None and lost.notice.severity == "error"
    waiting = react(Event("agent.screen", "x: waiting", agent="x", data={"state": "waiting"}))
    assert waiting.mark == "x" and waiting.notice.severity == "warning"
    refused = react(
        Event(
            "lock.refused",
            "docs: refused",
            agent="docs",
            level="warn",
            data={"holder": "backend", "held_pattern": "src/**"},
        )
    )
    assert refused.conflict == LockConflict("backend", "src/**", "docs")
    assert refused.conflict.key == "backend:src/**"
    quiet = react(Event("message.routed", "a -> b"))
    assert quiet.notice is None and quiet.mark is None and quiet.conflict is None
    kickoff = KickoffProgress()
    assert kickoff.feed(Event("kickoff.started", "go")) is None
    kickoff.feed(Event("agent.registered", "a", agent="a"))
    assert kickoff.header(3) == " · kickoff: registered 1/3"
    done = kickoff.feed(Event("kickoff.done", "all here", level="warn"))
    assert done.severity == "warning" and kickoff.registered is None and kickoff.header(3) == ""


# ---- the panels in the room ----------------------------------------------------------------
async def test_locks_leave_by_key_and_a_refusal_is_flagged_at_once(snap_ws: Path):
    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        locks = app.query_one("#locks")
        assert [r.value for r in locks.rows] == ["backend:src/api/**", "frontend:src/shared/*.ts"]
        await pilot.press("3", "down")
        assert locks.selected.key == "frontend:src/shared/*.ts"
        ws = load_workspace(str(snap_ws))
        Coordinator(ws).release("backend", ["src/api/**"], why="test")
        app.request_refresh()
        await until(pilot, lambda: locks.row_count == 1)
        assert locks.selected.key == "frontend:src/shared/*.ts"
        app.post_message(
            EngineEvent(
                Event(
                    "lock.refused",
                    "docs: refused",
                    agent="docs",
                    level="warn",
                    data={"holder": "frontend", "held_pattern": "src/shared/*.ts"},
                )
            )
        )
        # (the panel is narrow at this size: the pattern shows the mark, the column who)
        key = "frontend:src/shared/*.ts"
        await until(pilot, lambda: str(locks.cell(key, "Conflict")) == "⚠ docs")
        assert str(locks.get_cell(key, "Pattern")) == "⚠ src/shared/*.ts"


async def test_the_agents_panel_posts_what_the_operator_did(snap_ws: Path):
    seen: list = []
    app = room(snap_ws)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot)
        agents = app.query_one("#agents")
        # frontend waits on a dialog: marked, though no event said so
        assert "frontend" in agents.alerts
        assert str(agents.get_cell("frontend", "Agent")) == "! frontend"
        await pilot.press("1", "down")
        await until(pilot, lambda: "frontend" not in agents.alerts)
        assert str(agents.get_cell("frontend", "Agent")) == "frontend"
        assert [m.agent for m in seen if isinstance(m, AgentHighlighted)][-1] == "frontend"
        # and the preview followed it
        await until(pilot, lambda: app.query_one("#preview").domain == "frontend")
        await pilot.press("enter")
        await until(pilot, lambda: any(isinstance(m, AgentChosen) for m in seen))
        assert next(m for m in seen if isinstance(m, AgentChosen)).agent == "frontend"


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


async def test_the_task_tree_relabels_in_place_and_rebuilds_when_its_shape_changes(
    snap_ws: Path,
):
    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one("#task-tree")

        def node(tid: str):
            return next((n for n in walk(tree.root) if n.data == tid), None)

        t4 = node("T4")
        assert str(t4.label).startswith("◇ T4")  # ready
        await pilot.press("2")
        tree.move_cursor(t4)
        overlay = snap_ws / ".comm-node" / "tasks.json"
        data = json.loads(overlay.read_text())
        data["tasks"]["T4"] = {"status": "in_progress", "assignee": "docs"}
        overlay.write_text(json.dumps(data))
        app.request_refresh()
        await until(pilot, lambda: str(node("T4").label).startswith("▶ T4"))
        assert node("T4") is t4 and tree.cursor_node is t4  # the same node: cursor kept
        tasks = snap_ws / "tasks.toml"
        tasks.write_text(tasks.read_text() + '[[tasks]]\nid = "T6"\ntitle = "Blog post"\n')
        app.request_refresh()
        await until(pilot, lambda: node("T6") is not None)
        assert node("T4") is not t4  # a new task: the tree was laid out again


async def test_an_older_world_never_replaces_a_newer_one_and_a_domain_can_come_back(
    snap_ws: Path,
):
    """Worker reads can finish out of order (an exclusive thread worker still runs to its
    end): the older world is dropped. A domain removed and back at once (its old row still
    leaving the DOM) gets a new row, never a DuplicateIds crash."""
    import dataclasses

    from comm_node_tui.tui.messages import WorldUpdated
    from comm_node_tui.tui.widgets.burn import BurnPanel

    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burn = app.query_one(BurnPanel)
        agents = app.query_one("#agents")
        everyone = app.bridge.snapshot()
        fewer = dataclasses.replace(
            everyone, agents=tuple(a for a in everyone.agents if a.name != "docs")
        )
        app.on_world_updated(WorldUpdated(fewer, {}, False, seq=1000))
        app.on_world_updated(WorldUpdated(everyone, {}, False, seq=999))  # older: dropped
        await pilot.pause()
        assert set(burn.rows) == {"backend", "frontend"} and agents.row_count == 2
        app.on_world_updated(WorldUpdated(everyone, {}, False, seq=1001))  # docs is back
        await until(pilot, lambda: set(burn.rows) == {"backend", "frontend", "docs"})
        await settle(pilot)
        # gone and back within one tick: the old row is still leaving the DOM
        app.on_world_updated(WorldUpdated(fewer, {}, False, seq=1002))
        app.on_world_updated(WorldUpdated(everyone, {}, False, seq=1003))
        await until(pilot, lambda: set(burn.rows) == {"backend", "frontend", "docs"})
        await settle(pilot)
        assert agents.row_count == 3 and app.is_running


async def test_the_preview_says_how_far_the_agents_last_delivery_got(snap_ws: Path):
    """A delivery's receipt under the agent's pane: typed is not started; started only once
    the agent's own hook said so; text from the receipts file is never markup."""
    from comm_node_tui.protocol import receipts as rc

    ws = load_workspace(str(snap_ws))
    path = rc.path_in(ws.paths.state)
    rid = rc.open_receipt(path, "backend", "[bold]hello[/bold]", "[red]op")
    rc.append(path, rid, "backend", "typed")
    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        preview = app.query_one("#preview")
        await until(pilot, lambda: str(preview.border_subtitle or "").endswith("typed"))
        # shown as text: Textual hands the title back as markup, the bracket escaped
        assert str(preview.border_subtitle) == "last delivery (\\[red]op): typed"
        assert rc.hook_saw(path, "backend", "UserPromptSubmit", "[bold]hello[/bold]", False)
        app.request_refresh()
        await until(pilot, lambda: "started" in str(preview.border_subtitle or ""))


async def test_the_burn_panel_draws_every_agent_in_one_scrolling_widget(snap_ws: Path):
    """Each agent one line (name, sparkline, time left first), drawn by the panel itself: more
    agents than fit scroll, the last one reachable, and an agent gone leaves no line."""
    import dataclasses

    from comm_node_tui.tui.messages import WorldUpdated
    from comm_node_tui.tui.widgets.burn import BurnPanel

    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burn = app.query_one(BurnPanel)
        everyone = app.bridge.snapshot()
        one = everyone.agents[0]
        many = tuple(dataclasses.replace(one, name=f"a{i:02d}") for i in range(40))
        app.on_world_updated(
            WorldUpdated(dataclasses.replace(everyone, agents=many), {}, False, 1000)
        )
        await pilot.pause()
        assert list(burn.rows) == [a.name for a in many] and not burn.children
        assert burn.virtual_size.height == 40 > burn.scrollable_content_region.height
        first = burn.render_line(0).text
        assert first.startswith("a00 ") and "no limit" in first
        burn.scroll_end(animate=False)
        await until(pilot, lambda: burn.scroll_offset.y > 0)
        height = burn.scrollable_content_region.height
        assert burn.render_line(height - 1).text.startswith("a39 ")
        fewer = dataclasses.replace(everyone, agents=many[:3])
        app.on_world_updated(WorldUpdated(fewer, {}, False, 1001))
        await until(pilot, lambda: burn.virtual_size.height == 3)
        await until(pilot, lambda: burn.scroll_offset.y == 0)
        texts = [burn.render_line(y).text for y in range(4)]
        assert [t.split()[0] for t in texts[:3]] == ["a00", "a01", "a02"] and not texts[3].strip()


async def test_the_agents_show_before_the_tasks_are_loaded(snap_ws: Path):
    """A first look (the status files, no tasks) fills the agents' rows while the task panel
    says it is loading, not that there are no tasks; the full world then fills the tree, and
    a first look read before it but arriving after it changes nothing."""
    from comm_node_tui.tui.messages import WorldUpdated
    from comm_node_tui.tui.widgets.tasks import TasksPanel

    app = room(snap_ws)
    look, full = app.bridge.first_look(), app.bridge.snapshot()
    assert [a.name for a in look.agents] == [a.name for a in full.agents]
    assert not look.task_graph and full.task_graph
    # The room's own reads (seq 1, 2, ...) are dropped whenever they land, even before the
    # first world below: this test hands the worlds in itself.
    app._world_applied = 999
    async with app.run_test(size=SIZE) as pilot:
        panel, table = app.query_one(TasksPanel), app.query_one("#agents")
        app.on_world_updated(WorldUpdated(look, {}, False, seq=1000, no_tasks=True))
        await pilot.pause()
        assert table.row_count == len(look.agents) and panel.loading
        assert not panel.tree.root.children
        # a still line, not an animation redrawing the room while the engine starts
        cover = panel.get_loading_widget()
        assert "loading the tasks" in str(cover.render()) and not cover.auto_refresh
        app.on_world_updated(WorldUpdated(full, {}, False, seq=1001))
        await pilot.pause()
        shown = len(panel.tree.root.children)
        assert not panel.loading and shown > 0
        app.on_world_updated(WorldUpdated(look, {}, False, seq=999, no_tasks=True))
        await settle(pilot)
        assert not panel.loading and len(panel.tree.root.children) == shown


async def test_the_task_panel_keeps_an_equal_graph_built_apart(snap_ws: Path):
    """A graph equal to the one shown but built apart (a read from the files while the
    engine started) redraws nothing, and is kept: later worlds compare by identity."""
    import dataclasses

    from comm_node_tui.engine.world_views import TaskGraph
    from comm_node_tui.tui.messages import WorldUpdated
    from comm_node_tui.tui.widgets.tasks import TasksPanel

    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panel = app.query_one(TasksPanel)
        shown = app.world
        graph = shown.task_graph
        apart = TaskGraph(dict(graph), graph.tasks, graph.blocked, object())
        assert apart == graph and apart is not graph
        nodes = dict(panel._tree_nodes)
        again = dataclasses.replace(shown, task_graph=apart)
        app.on_world_updated(WorldUpdated(again, {}, False, seq=1000))
        await pilot.pause()
        assert panel.graph is apart and panel._tree_nodes == nodes  # kept, not redrawn


async def test_the_git_column_is_read_apart_and_again_when_the_agent_moved(snap_ws: Path):
    """The branches come from their own worker (a `git status` per domain held every world
    read that shared one). A domain is read again when its agent's status moved since (its
    work comes with its hooks), not every 10 s: an idle agent's repository waits a minute."""
    import git

    from comm_node_tui.protocol.status import update_status

    repos = {}
    for name in ("backend", "docs"):
        repo = repos[name] = git.Repo.init(snap_ws / name)
        (snap_ws / name / "README.md").write_text("x\n")
        (snap_ws / name / ".gitignore").write_text(".comm-node/\n")
        repo.index.add(["README.md", ".gitignore"])
        repo.index.commit("first")
    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.query_one("#agents")
        branch = repos["backend"].active_branch.name

        def git_of(name: str) -> str:
            return str(table.cell(name, "Git"))

        await until(pilot, lambda: git_of("backend") == branch and git_of("docs") == branch)
        # both repositories get an edit; only backend's agent writes its status
        for name in ("backend", "docs"):
            (snap_ws / name / "new.txt").write_text("y\n")
        paths = app.ws.domains["backend"].paths
        update_status(paths.status, "backend", progress="edited")
        app.refresh_git()
        await until(pilot, lambda: git_of("backend") == f"{branch}*")
        await settle(pilot)
        assert git_of("docs") == branch  # read again within the minute only if it moved
        # and a world read after it keeps the column and shows the change
        app.request_refresh()
        await until(pilot, lambda: "edited" in str(table.cell("backend", "Progress")))
        assert git_of("backend") == f"{branch}*"


async def test_a_change_after_a_quiet_spell_is_read_at_once_and_a_burst_in_few_reads(
    snap_ws: Path,
):
    """The first request after a quiet spell starts a read there and then (a status change
    no longer waits for a gathering timer); the requests of a burst that follow it are
    gathered: a read at most every REFRESH_GAP_S, the newest world shown at the end."""
    from comm_node_tui.protocol.status import update_status

    app = room(snap_ws)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        reads: list[int] = []
        read = app.bridge.numbered_snapshot

        def counted(numbers):
            reads.append(1)
            return read(numbers)

        app.bridge.numbered_snapshot = counted  # type: ignore[method-assign]
        app._read_at = 0.0  # a quiet spell (the settle's own reads may be < 20 ms ago)
        before = {w for w in app.workers if w.group == "world"}
        app.request_refresh()
        assert {w for w in app.workers if w.group == "world"} - before  # started, no timer
        update_status(app.ws.domains["docs"].paths.status, "docs", progress="end of burst")
        for _ in range(100):
            app.request_refresh()
        table = app.query_one("#agents")
        await until(pilot, lambda: "end of burst" in str(table.cell("docs", "Progress")))
        await settle(pilot)
        # 100 requests gathered into a few reads: one at once, then at most one each
        # REFRESH_GAP_S (a loaded machine can stretch the burst over a gap or two, and the
        # room's 5 s heartbeat may ask once more)
        assert 1 <= len(reads) <= 5


async def test_an_engine_event_before_or_after_the_event_table_is_kept_not_a_crash():
    """The engine's thread posts from the room's first moments to its last; Textual mounts a
    panel before its children and removes them first, so the panel can be there without its
    table (NoMatches failed a full run once). The event is kept and shown once it is."""
    from comm_node_tui.tui.widgets.events import EventsPanel

    early = Event("tasks.changed", "2 tasks: 1 ready", agent=None)
    panel = EventsPanel(id="events")
    panel.add(early)  # not composed yet: no table

    class One(App):
        def compose(self) -> ComposeResult:
            yield panel

    async with One().run_test(size=(100, 10)) as pilot:
        await until(pilot, lambda: panel.table.row_count == 1)
        panel.add(Event("agent.heartbeat", "beat", agent="b"))
        assert panel.table.row_count == 2
        await panel.table.remove()  # as at shutdown: the table goes before its panel
        panel.add(Event("agent.heartbeat", "after", agent="b"))
        assert [e.msg for e in panel.events] == ["2 tasks: 1 ready", "beat", "after"]


def test_a_closed_room_leaves_no_widget_renders_behind(snap_ws: Path):
    """Textual keeps up to 1,024 widgets' StylesCache (and their rendered lines) alive in an
    lru_cache keyed by the cache itself (Textualize/textual#6665): a room that recomposes its
    footer on every focus change piled them up, and every full garbage collection walked them
    (comm_node_tui/uikit/textual_fixes.py). Once the room has closed, none of its is left.
    (The room runs in a thread of its own: the test's own task would keep the app in its
    context, Textual's active_app, until the test ends.)"""
    import asyncio
    import gc
    import threading
    import weakref

    from textual.widget import Widget

    drawn: list[weakref.ref] = []
    failed: list[BaseException] = []

    async def run() -> None:
        app = room(snap_ws)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("tab", "tab", "tab", "tab")  # focus changes: footers recomposed
            await settle(pilot)
            drawn.extend(weakref.ref(w._styles_cache) for w in app.screen.query(Widget))

    def closing() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # a crash while the room closes fails the test
            failed.append(exc)

    thread = threading.Thread(target=closing, name="room-to-close", daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the room did not close within 120 s"
    if failed:
        raise failed[0]
    assert len(drawn) > 20
    gc.collect()
    assert [c() for c in drawn if c() is not None] == []
