"""The room a browser tab gets: `python -m comm_node_tui.web.room`, run by the server as a
subprocess under Textual's web driver (textual-serve sets TEXTUAL_DRIVER).

It never starts an engine of its own: `comm-node web` keeps one running (keeper.py), and a
room that held the engine would take it down when its tab closed. With `--viewer` it is
read-only: every intervention is refused before a dialog opens, and `_act`, the one funnel
every intervention goes through (tui/hand.py), refuses too, so an action reached another
way (the palette, the "Needs you" screen) cannot slip past.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import Any

from comm_node_tui.engine.pidlock import holder_pid
from comm_node_tui.protocol.events import follow
from comm_node_tui.tui.actions import ACTIONS
from comm_node_tui.tui.app import ControlRoom
from comm_node_tui.tui.bridge import EngineBridge
from comm_node_tui.workspace.discovery import load_workspace

# The keys that read: moving about, filtering, opening, help, quitting. Everything else in
# the table intervenes (types into a pane, writes a file, signals a process).
READS = {"show_boundaries", "needs", "filter_events", "open_event", "help", "quit"}
INTERVENTIONS = frozenset(a.action for a in ACTIONS) - READS
VIEWER_REFUSES = "read-only viewer: the room in this browser cannot act on agents"
NO_TERMINAL = (
    "attach needs a terminal: in the browser read the agent in the preview (6), or run "
    "`comm-node attach NAME` in a terminal"
)


class FollowingBridge(EngineBridge):
    """Watches the engine `comm-node web` keeps; never takes the workspace itself."""

    def start(self) -> None:
        # "web" while the keeper is between engines (one just stopped, the next starting)
        self.viewer_of = holder_pid(self.ws.paths.engine_lock) or "web"
        self._thread = threading.Thread(target=self._follow, name="cn-follow", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        if self.ws.settings.cluster.enabled:  # and the other machines' events the engine got
            from comm_node_tui.cluster.remote_log import follow_in_thread

            self.remote_follower = follow_in_thread(
                self.ws.paths.state, self.on_event, self._follow_stop
            )
        for ev in follow(self.ws.paths.events, stop=self._follow_stop.is_set, poll_s=0.2):
            self.on_event(ev)
            # the keeper may have started a new engine: the header names its pid
            self.viewer_of = holder_pid(self.ws.paths.engine_lock) or self.viewer_of


class WebRoom(ControlRoom):
    def __init__(self, *args: Any, viewer: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        old = self.bridge
        self.bridge = FollowingBridge(
            old.ws, old.on_event, clock=old.clock, on_change=old.on_change
        )

    def on_mount(self) -> None:
        if self.viewer:
            self.title = "comm-node (read-only)"

    def _refused(self) -> bool:
        if self.viewer:
            self.notify(VIEWER_REFUSES, severity="warning")
        return self.viewer

    def _act(self, what: str, fn: Callable[..., object], *args: object) -> None:
        if not self._refused():
            super()._act(what, fn, *args)

    def answer_agent(self, name: str, reply_to: str | None) -> None:
        if not self._refused():  # before its editor opens: nothing typed in vain
            super().answer_agent(name, reply_to)

    def action_attach(self) -> None:
        # The browser has no terminal to hand to tmux (Textual's web driver cannot suspend).
        self.notify(NO_TERMINAL, severity="warning")


def _refusing(name: str) -> Callable[..., object]:
    """action_NAME that a viewer's room refuses before any dialog opens."""
    inherited = getattr(ControlRoom, f"action_{name}")

    def action(self: WebRoom, *args: object) -> object:
        if self._refused():
            return None
        return inherited(self, *args)

    action.__name__ = f"action_{name}"
    return action


for _name in INTERVENTIONS - {"attach"}:
    setattr(WebRoom, f"action_{_name}", _refusing(_name))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="comm_node_tui.web.room")
    p.add_argument("--workspace", required=True)
    p.add_argument("--layout")
    p.add_argument("--theme", default="elder")
    p.add_argument("--viewer", action="store_true")
    args = p.parse_args(argv)
    ws = load_workspace(args.workspace)
    WebRoom(ws, layout=args.layout, theme=args.theme, viewer=args.viewer).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
