"""The selected agent's live tmux screen (text only, cleaned).

The panel follows the agent under the agents panel's cursor and reads its pane in a worker,
only when tmux saw activity in it (the world's pane record says when; checked before any
worker starts, so an idle room costs nothing). A viewer has no such record: it reads every
second. Under the pane: the agent's last delivery, as far as its receipt got."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.widgets import Static

from comm_node_tui.engine.world import World
from comm_node_tui.tui.messages import PaneText
from comm_node_tui.tui.text import block

POLL_S = 1.0


class PreviewPanel(VerticalScroll):
    DEFAULT_CSS = "PreviewPanel { height: 1fr; } PreviewPanel > Static { width: auto; }"

    def __init__(
        self,
        peek: Callable[[str], str] | None = None,
        tracked: Callable[[], bool] = lambda: False,
        **kwargs,
    ) -> None:
        """`peek`: the pane's text (IO, called in a worker); `tracked`: whether the world's
        pane records follow tmux's activity (an engine in this process)."""
        super().__init__(**kwargs)
        self.border_title = "6 Pane"
        self.domain: str | None = None
        self._peek = peek
        self._tracked = tracked
        self._agent: str | None = None
        self._world: World | None = None
        self._read_at: tuple | None = None  # the pane key the text on show was read at
        self._shown: tuple[str | None, str] | None = None  # (domain, text) on show

    def compose(self):
        yield Static(id="pane-text")

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.poll)

    def follow(self, name: str) -> None:
        """Show this agent's pane from now on (read at once)."""
        self._agent, self._read_at = name, None
        self._show_delivery()
        self.read(name)

    def update_world(self, world: World) -> None:
        self._world = world
        self._show_delivery()

    def _show_delivery(self) -> None:
        """The followed agent's last delivery, as far as it got (its receipt), under the
        pane: the operator sees "started" only when the agent's own hook proved it."""
        line = None
        if self._world is not None and self._agent:
            mine = self._world.receipts_of(self._agent)
            if mine:
                r = mine[-1]
                what = r.state + (f": {r.reason}" if r.reason else "")
                if r.state in ("started", "answered") and r.started_s is not None:
                    what += f" ({r.started_s:.1f} s)"
                # Text, not a markup string: the receipts file sits in the workspace, where
                # agents can write.
                line = Text(f"last delivery ({r.by}): {what}")
        if str(line or "") != str(self.border_subtitle or ""):
            self.border_subtitle = line

    def _key(self, name: str) -> tuple:
        agent = self._world.agent(name) if self._world is not None else None
        pane = agent.pane if agent is not None else None
        return (name, None, None) if pane is None else (name, pane.activity, pane.id)

    def poll(self) -> None:
        name = self._agent
        if not name or not self.display or self.app.screen.is_modal:
            return
        if self._key(name) == self._read_at and self._tracked():
            return
        self.read(name)

    @work(thread=True, group="preview", exclusive=True)
    def read(self, name: str) -> None:
        key = self._key(name)
        if key == self._read_at and self._tracked():
            # No activity since the last read (or no pane at all): nothing to capture. The
            # engine's pane poll tells when that changes.
            return
        try:
            if self._peek is None:
                raise RuntimeError("no tmux here")
            text = self._peek(name)
        except Exception as exc:
            text = f"(no pane: {exc})"
        self._read_at = key
        self.post_message(PaneText(name, text))

    def on_pane_text(self, message: PaneText) -> None:
        from comm_node_tui.adapters.screen import clean

        message.stop()
        if message.domain == self._agent:  # not a read overtaken by a newer selection
            self.show(message.domain, clean(message.text))

    def show(self, domain: str | None, text: str) -> None:
        if (domain, text) == self._shown:
            # the same screen read again (a viewer reads every second): a Static updated is
            # a layout pass of the whole room, 2 % of a core in an idle viewer at 200 agents
            return
        self._shown = (domain, text)
        self.domain = domain
        self.border_title = f"6 Pane · {domain}" if domain else "6 Pane"
        self.query_one("#pane-text", Static).update(block(text, max_lines=200, width=300))
        self.scroll_end(animate=False)
