"""The room at every terminal size (issue 19, item 5): a layout chosen by size unless one was
picked, every agent visible at 80x24, the columns that matter first, the time left in the
burn panel, one number format, help and quit always in the footer, notices that never
cover a panel, the filter's focus and its indicator, and a message's subject in its event.

The workspace is the snapshot one (tests/test_snapshots.py) with five agents, read from the
files (no engine, no tmux); a world with token usage in it is handed to the room as the
engine's reads are (a WorldUpdated), since only a running engine reads transcripts."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input
from textual.widgets._toast import Toast

from comm_node_tui.tui.numbers import count, minutes, money, percent
from comm_node_tui.tui.themes import by_size
from comm_node_tui.tui.widgets.burn import fit_parts
from comm_node_tui.tui.widgets.keyed_table import fit_columns
from tests.test_snapshots import MORE, build, room, settle, with_usage
from tests.waiting import until

SIZES = [(80, 24), (120, 35), (200, 50)]
AGENTS = ("backend", "frontend", "docs", *MORE)
PANELS = ("agents", "tasks", "locks", "burn", "events", "preview")


@pytest.fixture
def five(tmp_path, monkeypatch):
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", "cn-sizes-never-started")
    return build(tmp_path / "ws", more=MORE)


def screen_text(app) -> str:
    """The screen as a terminal would show it, in plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


# ---- the rules, alone ------------------------------------------------------------------------
def test_one_number_format():
    assert [count(n) for n in (0, 950, 12_345, 200_000, 999_960, 1_234_567, None)] == [
        "0",
        "950",
        "12.3k",
        "200k",
        "1M",
        "1.2M",
        "∞",
    ]
    assert count(1_234.5) == "1.2k" and count(80.4) == "80"
    assert [percent(f) for f in (0, 0.423, 0.995, 1)] == ["0%", "42%", "100%", "100%"]
    assert [money(x) for x in (0, 0.5, 12.345, 2_500)] == ["$0.00", "$0.50", "$12.35", "$2.5k"]
    assert [minutes(m) for m in (None, 0.4, 12, 125, 3 * 24 * 60)] == [
        "-",
        "0m",
        "12m",
        "2h05m",
        "3d",
    ]


def test_layout_by_size():
    assert [by_size(w, h) for w, h in SIZES] == ["compact", "default", "wall"]
    assert by_size(150, 44) == "default" and by_size(99, 50) == "compact"
    assert by_size(200, 29) == "compact" and by_size(179, 50) == "default"


def test_columns_that_matter_first():
    columns = (("A", 10), ("B", 10), ("C", 10), ("D", 30))
    # all fit: as given
    assert fit_columns(columns, 200) == {"A": 10, "B": 10, "C": 10, "D": 30}
    # too narrow: the least important go, whatever their place; order kept
    assert fit_columns(columns, 44, importance=("A", "D")) == {"A": 10, "D": 30}
    # the flex column counts at its minimum, then takes what is left
    assert fit_columns(columns, 40, importance=("A", "D", "B"), flex=("D", 8)) == {
        "A": 10,
        "B": 10,
        "D": 14,
    }
    assert fit_parts(("12m left", "12.3k tok", "$0.50"), 22) == "12m left · 12.3k tok"
    assert fit_parts(("12m left", "12.3k tok"), 3) == "12m"


# ---- the room at each size -----------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_size_shows_every_agent_the_columns_that_matter_and_help(five, size):
    app = room(five)
    async with app.run_test(size=size) as pilot:
        await with_usage(pilot)
        assert app.layout_name == by_size(*size)
        text = screen_text(app)
        agents = app.query_one("#agents", DataTable)
        # every agent's row is inside the panel's visible region, not scrolled away
        assert agents.row_count == len(AGENTS)
        assert agents.scrollable_content_region.height >= len(AGENTS) + 1  # + the header
        for name in AGENTS:
            assert name in text, name
        shown = list(agents.shown_columns)
        assert shown[:2] == ["Agent", "State"] and {"Budget", "Tok/min"} <= set(shown)
        assert str(agents.get_cell("backend", "Tok/min")) == "1.2k"
        # every panel has rows of its own on the screen
        for panel in PANELS:
            region = app.query_one(f"#{panel}").region
            assert region.width >= 20 and region.height >= 3, (panel, region)
        # the burn panel: time left first, in the same format as everywhere
        burn = app.query_one("#burn").rows
        assert burn["backend"].numbers.startswith("6h35m left")
        assert burn["frontend"].numbers.startswith("no limit")
        if size[0] >= 200:  # wide enough for every number
            assert burn["backend"].numbers == "6h35m left · 12.3k tok · $0.50 · msg budget 200k"
            assert "1.2M tok · $12.00" in burn["frontend"].numbers
        footer = text.splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer, footer

        # and no key cut in half by them: a key shows whole or not at all
        def whole_keys() -> list:
            edge = app.query_one("RoomFooter > HorizontalGroup").region.x
            shown = [k for k in app.query("RoomFooter > FooterKey") if k.display]
            return shown if shown and all(k.region.right <= edge for k in shown) else []

        # the footer hides cut keys after its layout, which may come a refresh or two later
        shown = await until(pilot, whole_keys, what="only whole keys in the footer")
        footer = screen_text(app).splitlines()[-1]
        assert all(f"{k.key_display} {k.description}" in footer for k in shown), footer


async def test_the_layout_follows_a_resize_unless_one_was_picked(five):
    app = room(five)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        assert app.layout_name == "wall"
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: app.layout_name == "compact")
        await settle(pilot)
        # the compact grid is in force: the agents panel spans the width
        assert app.query_one("#agents").region.width == 80
        # and the agents table shows fewer columns, the important ones
        assert "Git" not in app.query_one("#agents").shown_columns
        assert "/ Filter" not in screen_text(app).splitlines()[-1]  # no room for it
        await pilot.resize_terminal(120, 35)
        await until(pilot, lambda: app.layout_name == "default")
        # a wider footer shows the keys it had to hide again
        await until(pilot, lambda: "/ Filter" in screen_text(app).splitlines()[-1])
    picked = room(five, layout="wall")
    async with picked.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        assert picked.layout_name == "wall"


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_notices_never_cover_a_panel(five, size):
    app = room(five)
    async with app.run_test(size=size, notifications=True) as pilot:
        await settle(pilot)
        app.notify("backend: restarted in its pane", title="restart")
        app.notify("frontend: cannot read its pane", severity="error")
        await until(pilot, lambda: len(app.screen.query(Toast)) == 2)
        await settle(pilot)
        toasts = [t.region for t in app.screen.query(Toast)]
        assert all(t.area for t in toasts)
        for panel in PANELS:
            region = app.query_one(f"#{panel}").region
            for toast in toasts:
                assert not region.overlaps(toast), (panel, region, toast)
        assert "backend: restarted in its pane" in screen_text(app)


async def test_the_filter_gives_the_keys_back_and_says_it_is_on(five):
    app = room(five)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        events = app.query_one("#events")
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"routed", "enter")
        await until(pilot, lambda: events.table.row_count == 1)
        # Enter: the keys are the room's again, the filter stays on and says so
        assert app.focused is events.table
        assert "filter: routed" in events.border_title
        assert "filter: routed" in screen_text(app)
        await pilot.press("question_mark")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        assert events.query_one(Input).value == "routed"  # no "?" typed into the filter
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ != "HelpScreen")
        # Escape in the table clears the filter
        app.query_one("#events").table.focus()
        await pilot.press("escape")
        await until(pilot, lambda: events.table.row_count == len(events.events))
        assert events.filter == "" and "filter" not in events.border_title


async def test_a_message_event_shows_its_subject(five):
    app = room(five)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        table = app.query_one("#events").table
        cells = [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]
        routed = next(c for c in cells if "backend -> frontend" in c)
        assert routed.startswith("“Login endpoint is up”")
        await pilot.press("5", "slash", *"endpoint", "enter")  # the subject is searched too
        await until(pilot, lambda: table.row_count == 1)
