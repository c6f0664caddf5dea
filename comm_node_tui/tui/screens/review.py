"""The review screen: what one domain changed, file by file, and comments back to its agent.

The changed files on the left, the selected file's diff on the right, highlighted by Rich's
Syntax with the "diff" lexer: Syntax shows its text as code, never as markup, so a `[bold]`
an agent wrote stays literal (integration/diff.py has already removed control characters).
A cursor line in the diff (n/p jump between hunks, J/K move a line) is what a comment is
about: the comment goes to the agent through operator/actions.py (`review_comment`), which
names the file and the line and quotes the hunk's header. git runs in workers (thread=True);
their results come back as typed messages; the screen writes no file itself.

A modal screen: the room's keys (approve, kill, inject, ...) act on the agent selected in the
room, which this screen hides, so they stop here; its own table (REVIEW_ACTIONS) has the help
and the quit the room offers, and escape (or q) back to the room.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from comm_node_tui.errors import CommNodeError
from comm_node_tui.integration.diff import FileChange, Patch, hunk_at
from comm_node_tui.integration.gitwork import Work
from comm_node_tui.operator.actions import OperatorActions
from comm_node_tui.tui.actions import REVIEW_ACTIONS, screen_bindings
from comm_node_tui.tui.screens.dialogs import PromptScreen
from comm_node_tui.tui.text import plain, safe
from comm_node_tui.tui.widgets.footer import RoomFooter

MAX_SHOWN_LINES = 20_000  # a patch under MAX_PATCH_BYTES can still be long: the rest is cut


class FilesLoaded(Message):
    def __init__(self, work: Work | None, files: list[FileChange], total: int, error: str):
        super().__init__()
        self.work, self.files, self.total, self.error = work, files, total, error


class PatchLoaded(Message):
    def __init__(self, change: FileChange, patch: Patch) -> None:
        super().__init__()
        self.change, self.patch = change, patch


@dataclass
class Cursor:
    lines: list[str]
    line: int = 0

    def hunks(self) -> list[int]:
        return [i for i, text in enumerate(self.lines) if text.startswith("@@")]


def file_label(change: FileChange) -> Text:
    if change.status == "?":
        counts = "new"
    elif change.binary:
        counts = "bin"
    else:
        counts = f"+{change.added} -{change.removed}"
    text = Text(f"{change.status} ", style="bold")
    text.append(f"{counts:>10} ", style="dim")
    text.append(plain(change.path, 300))  # an agent's file name: plain text
    return text


class ReviewScreen(ModalScreen[None]):
    BINDINGS = screen_bindings(REVIEW_ACTIONS)
    DEFAULT_CSS = """
    ReviewScreen { background: $background; &:ansi { background: ansi_default; } }
    ReviewScreen #review-summary { height: 1; padding: 0 1; background: $panel; }
    ReviewScreen #review-files { width: 38%; height: 1fr; border: round $primary; }
    ReviewScreen #review-diff { width: 1fr; height: 1fr; border: round $secondary; }
    ReviewScreen #review-where { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, name: str, operator: OperatorActions) -> None:
        super().__init__()
        self.domain = name
        self.operator = operator
        self.work: Work | None = None
        self.files: list[FileChange] = []
        self.shown: FileChange | None = None
        self.cursor = Cursor([])

    def compose(self) -> ComposeResult:
        yield Label(safe(f"Review {self.domain}: reading git…", 300), id="review-summary")
        with Horizontal():
            yield OptionList(id="review-files")
            with Vertical():
                with VerticalScroll(id="review-diff"):
                    yield Static(id="review-patch")
                yield Label("", id="review-where")
        yield RoomFooter()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.load_files()

    # ---- workers ---------------------------------------------------------------------------
    @work(thread=True, group="review-files", exclusive=True, exit_on_error=False)
    def load_files(self) -> None:
        try:
            work_, files, total = self.operator.review_files(self.domain)
        except CommNodeError as exc:
            self.post_message(FilesLoaded(None, [], 0, str(exc)))
            return
        self.post_message(FilesLoaded(work_, files, total, ""))

    @work(thread=True, group="review-patch", exclusive=True, exit_on_error=False)
    def load_patch(self, change: FileChange) -> None:
        assert self.work is not None
        try:
            patch = self.operator.review_patch(self.work, change)
        except CommNodeError as exc:
            patch = Patch(change.path, "", str(exc))
        self.post_message(PatchLoaded(change, patch))

    # ---- results ---------------------------------------------------------------------------
    def on_files_loaded(self, msg: FilesLoaded) -> None:
        summary = self.query_one("#review-summary", Label)
        if msg.work is None:
            summary.update(safe(f"Review {self.domain}: {msg.error}", 300))
            return
        self.work, self.files = msg.work, msg.files
        if msg.work.mode == "none":
            summary.update(safe(f"{msg.work.describe()}: nothing to review", 300))
            return
        more = f" (the first {len(msg.files)} shown)" if msg.total > len(msg.files) else ""
        summary.update(safe(f"{msg.work.describe()}: {msg.total} file(s) changed{more}", 300))
        files = self.query_one(OptionList)
        files.clear_options()
        files.add_options([Option(file_label(f), id=str(i)) for i, f in enumerate(self.files)])
        if self.files:
            files.highlighted = 0
        else:
            self.query_one("#review-patch", Static).update(Text("no changes"))

    @on(OptionList.OptionHighlighted, "#review-files")
    def _file_chosen(self, event: OptionList.OptionHighlighted) -> None:
        index = event.option_index
        if 0 <= index < len(self.files):
            self.load_patch(self.files[index])

    def on_patch_loaded(self, msg: PatchLoaded) -> None:
        self.shown = msg.change
        if msg.patch.note:
            self.cursor = Cursor([])
            self.query_one("#review-patch", Static).update(safe(msg.patch.note, 300))
            self.query_one("#review-where", Label).update(safe(msg.change.path, 300))
            return
        lines = msg.patch.text.splitlines()[:MAX_SHOWN_LINES]
        self.cursor = Cursor(lines)
        hunks = self.cursor.hunks()
        self.cursor.line = hunks[0] if hunks else 0
        self._show_diff()
        self.query_one("#review-diff", VerticalScroll).scroll_home(animate=False)

    # ---- the diff and its cursor ------------------------------------------------------------
    def _show_diff(self) -> None:
        c = self.cursor
        syntax = Syntax(
            "\n".join(c.lines),
            "diff",
            theme="ansi_dark",
            line_numbers=True,
            highlight_lines={c.line + 1},
            background_color="default",
            word_wrap=False,
        )
        self.query_one("#review-patch", Static).update(syntax)
        header, number = self.where()
        where = self.shown.path if self.shown else ""
        if number is not None:
            where += f", line {number}"
        if header:
            where += f"  {header}"
        self.query_one("#review-where", Label).update(safe(where, 300))

    def where(self) -> tuple[str, int | None]:
        """The hunk header over the cursor and the new file's line number there."""
        return hunk_at("\n".join(self.cursor.lines), self.cursor.line)

    def _move(self, line: int) -> None:
        if not self.cursor.lines:
            return
        self.cursor.line = max(0, min(line, len(self.cursor.lines) - 1))
        self._show_diff()
        view = self.query_one("#review-diff", VerticalScroll)
        top, height = int(view.scroll_y), max(1, view.scrollable_content_region.height)
        if not top <= self.cursor.line < top + height:
            view.scroll_to(y=max(0, self.cursor.line - 2), animate=False)

    def action_next_file(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_prev_file(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_next_hunk(self) -> None:
        later = [i for i in self.cursor.hunks() if i > self.cursor.line]
        if later:
            self._move(later[0])

    def action_prev_hunk(self) -> None:
        earlier = [i for i in self.cursor.hunks() if i < self.cursor.line]
        if earlier:
            self._move(earlier[-1])

    def action_line_down(self) -> None:
        self._move(self.cursor.line + 1)

    def action_line_up(self) -> None:
        self._move(self.cursor.line - 1)

    def action_page_down(self) -> None:
        self.query_one("#review-diff", VerticalScroll).scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.query_one("#review-diff", VerticalScroll).scroll_page_up(animate=False)

    # ---- to the agent ------------------------------------------------------------------------
    def action_comment(self) -> None:
        change = self.shown
        if change is None:
            self.notify("no file to comment on", severity="warning")
            return
        header, number = self.where()
        lines = self.cursor.lines
        quote = lines[self.cursor.line] if lines else ""
        about = f"{change.path}" + (f", line {number}" if number is not None else "")

        def typed(text: str | None) -> None:
            if text:
                self.app._act(  # type: ignore[attr-defined]
                    f"comment to {self.domain}",
                    self.operator.review_comment,
                    self.domain, change.path, number, header, quote, text,
                )  # fmt: skip

        self.app.push_screen(PromptScreen(f"Comment to {self.domain} on {about}:"), typed)

    def action_merge(self) -> None:
        self.app.merge_agent(self.domain)  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        self.app.action_help()  # type: ignore[attr-defined]

    async def action_quit(self) -> None:
        await self.app.action_quit()
