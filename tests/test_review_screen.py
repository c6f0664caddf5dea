"""The review screen in the room (tui/screens/review.py), driven with the Pilot: a real
repository with a worktree per domain, the changed files listed, the diff of the selected one,
hunks by keyboard, and a comment that reaches the agent's inbox naming the file, the line and
the hunk; the merge key queues the domain's branch."""

from __future__ import annotations

from textual.widgets import OptionList

from comm_node_tui.integration.queue import MergeQueue
from comm_node_tui.protocol.messages import split
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.tui.screens.dialogs import ConfirmScreen, PromptScreen
from comm_node_tui.tui.screens.review import ReviewScreen
from comm_node_tui.workspace.discovery import load_workspace
from tests.gitrepos import SHARED, commit, make_project
from tests.waiting import until

EDITED = SHARED.replace("line 2\n", "line two\n").replace("line 18\n", "line eighteen\n")


async def test_review_files_hunks_and_a_comment_that_reaches_the_agent(tmp_path):
    root = make_project(tmp_path, ("api", "web"))
    commit(root / "api", {"src/a.py": "print('[bold]hi[/bold]')\n", "src/shared.txt": EDITED})
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.query_one("#agents").row_count == 2)
        app.select_agent("api")
        await pilot.press("d")
        screen = await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen)
        files = screen.query_one(OptionList)
        await until(pilot, lambda: files.option_count == 2)
        await until(pilot, lambda: screen.shown is not None and screen.shown.path == "src/a.py")
        # an agent's text shown as it is: the markup stays literal
        await until(pilot, lambda: "[bold]hi[/bold]" in app.export_screenshot())
        await pilot.press("j")
        await until(pilot, lambda: screen.shown.path == "src/shared.txt")
        # two hunks (line 2, line 18): n moves the cursor to the second, p back
        first, second = screen.cursor.hunks()
        assert screen.cursor.line == first
        await pilot.press("n")
        assert screen.cursor.line == second
        await pilot.press(*"JJJJJ")  # past the context and the removed line
        header, number = screen.where()
        assert header.startswith("@@ -15,") and number == 18
        assert screen.cursor.lines[screen.cursor.line] == "+line eighteen"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"use a number")
        await pilot.press("enter")
        inbox = root / "api" / ".comm-node" / "inbox"
        [msg] = await until(pilot, lambda: list(inbox.glob("*.md")))
        meta, body = split(msg.read_text())
        assert meta["from"] == "operator" and meta["type"] == "review"
        assert "src/shared.txt, line 18" in body and f"> {header}" in body
        assert "> +line eighteen" in body and "use a number" in body
        # back to the first hunk, and the merge key on the screen queues the branch
        await pilot.press("p")  # the header of the hunk the cursor is in, then the one before
        assert screen.cursor.line == second
        await pilot.press("p")
        assert screen.cursor.line == first
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        queue = MergeQueue(app.operator.coord)
        await until(pilot, lambda: [e["domain"] for e in queue.entries()] == ["api"])
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ReviewScreen))


async def test_review_of_a_domain_outside_git_says_so(tmp_path):
    root = tmp_path / "plain"
    (root / "api").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "p"\n\n[[domains]]\nname = "api"\npath = "api"\n'
    )
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.query_one("#agents").row_count == 1)
        app.select_agent("api")
        await pilot.press("d")
        screen = await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen)
        summary = screen.query_one("#review-summary")
        await until(pilot, lambda: "not in git" in str(summary.render()))
