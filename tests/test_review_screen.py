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


async def open_review(pilot, name: str, agents: int) -> ReviewScreen:
    """`d` on `name`'s row, once the room lists its `agents`: the review screen it opens."""
    app = pilot.app
    await until(pilot, lambda: app.query_one("#agents").row_count == agents)
    app.select_agent(name)
    await pilot.press("d")
    return await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen)


async def test_review_files_hunks_and_a_comment_that_reaches_the_agent(tmp_path):
    root = make_project(tmp_path, ("api", "web"))
    commit(root / "api", {"src/a.py": "print('[bold]hi[/bold]')\n", "src/shared.txt": EDITED})
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_review(pilot, "api", agents=2)
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
        screen = await open_review(pilot, "api", agents=1)
        summary = screen.query_one("#review-summary")
        await until(pilot, lambda: "not in git" in str(summary.render()))


async def test_the_room_keys_stop_at_the_review_and_its_help_quit_and_back_are_its_own(tmp_path):
    """The review hides the room, so the room's keys (which act on the agent selected there)
    must not reach it; the screen's own table gives the help, quit and back the room has,
    each with an id (rebindable in [keymap]), in its footer, the help and the palette."""
    import html

    from textual.containers import VerticalScroll
    from textual.widgets._footer import FooterKey

    from comm_node_tui.tui.actions import REVIEW_ACTIONS
    from comm_node_tui.tui.commands import ActionsProvider
    from comm_node_tui.tui.screens.help import HelpScreen

    root = make_project(tmp_path, ("api", "web"))
    commit(root / "api", {"src/shared.txt": EDITED})
    toml = root / "comm-node.toml"
    toml.write_text(toml.read_text() + '\n[keymap]\nreview-quit = "Q"\n')
    app = ControlRoom(load_workspace(str(root)))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_review(pilot, "api", agents=2)
        await until(pilot, lambda: screen.shown is not None)
        depth = len(app.screen_stack)
        # kill and restart ask, inject opens its editor, w the needs screen, d a second
        # review, t a task picker: in the room each pushes a screen; here none does
        for key in ("x", "r", "i", "w", "d", "t", "b", "a", "h", "l", "plus", "slash", "o"):
            await pilot.press(key)
            assert app.screen is screen and len(app.screen_stack) == depth, key
        for key in ("y", "e", "1", "tab"):  # approve, interrupt, a panel: the room's too
            await pilot.press(key)
            assert app.screen is screen, key
        inbox = root / "api" / ".comm-node" / "inbox"
        assert not list(inbox.glob("*.md"))  # nothing typed or sent to the agent either
        # the footer: this screen's keys, help and quit kept at its right end, none of the room's
        shown = {k.action for k in screen.query(FooterKey)}
        assert {"help", "quit", "close", "comment", "merge"} <= shown
        assert not shown & {"kill", "inject", "approve", "attach", "interrupt"}
        # the palette: the review's own actions, the room's hidden ones not
        offered = [a.id for a, _run in ActionsProvider(screen)._actions()]
        assert offered == [a.id for a in REVIEW_ACTIONS]
        # ? opens the help, which lists this screen's keys; escape comes back to the review
        await pilot.press("question_mark")
        helper = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        helper.query_one(VerticalScroll).scroll_end(animate=False)  # its last section

        def on_screen() -> str:  # the SVG's text, its spaces as spaces
            return html.unescape(app.export_screenshot()).replace("\xa0", " ")

        text = await until(pilot, lambda: "Review: Quit" in (t := on_screen()) and t)
        assert "Review: Help" in text and "Review: Close" in text
        assert "?,f1" in text  # keys as they are typed, not textual's names
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert helper not in app.screen_stack
        # escape back to the room, where the room's keys work again
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ReviewScreen))
        await pilot.press("d")
        again = await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen)
        # quit, rebound by its id: the room closes from the review
        await pilot.press("Q")
        await until(pilot, lambda: app._exit)
    assert again is not screen
