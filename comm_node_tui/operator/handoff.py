"""The operator's hand-off of a full context (issue 17, item 6), for `comm-node handoff` and
the room's key alike.

Asks the agent, through the normal delivery path (AgentPanes.inject: typed only at its free
prompt, never into a dialog), to write its hand-off note to `.comm-node/handoff.md` in its
folder; waits until a new note is written; then types `/clear` as a command, once the agent
is back at its prompt (inject waits for it). The SessionStart(clear) hook then hands the
agent its task, contract, locks, mail, last failure and the note (hooks/handoff.py), so it
goes on where it was with an empty context. Nothing is cleared unless a new note was
written: a context is cleared only once what it held is saved.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from comm_node_tui.errors import CommNodeError, ConflictError, UsageError
from comm_node_tui.protocol.events import Event

if TYPE_CHECKING:
    from comm_node_tui.panes.manager import AgentPanes

POLL_S = 0.25  # how often the note's file is looked at while the agent writes it
DEFAULT_TIMEOUT_S = 600.0

REQUEST = (
    "comm-node hand-off: your context is being handed off. Write your hand-off note now to "
    "{note} (overwrite it): the task you are on and its state, what is done, what is left, "
    "what you were about to do next, the files and commands that matter, and anything you "
    "learned that the next session must know. At most 60 lines. Do nothing else after "
    "writing it: your context will then be cleared and the note handed back to you."
)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def hand_off(
    panes: AgentPanes, name: str, timeout_s: float = DEFAULT_TIMEOUT_S, clear: bool = True
) -> dict:
    """Ask `name` for its note, wait for it, clear its context; {"domain", "note",
    "cleared"}. CommNodeError (one line) when it cannot: nothing is cleared then."""
    from comm_node_tui.coordination.pause import read_pause
    from comm_node_tui.hooks.handoff import note_path
    from comm_node_tui.panes.inject import NotDelivered

    ws = panes.ws
    dom = ws.domains.get(name)
    if dom is None:
        raise UsageError(f"no domain '{name}'")
    if read_pause(ws.paths.state).covers(dom.name):
        raise ConflictError(
            f"{dom.name} is paused: nothing is typed into it (`comm-node resume {dom.name}`)"
        )
    note = note_path(dom)
    shown = os.path.relpath(note, dom.path)
    before = _mtime(note)
    deadline = time.monotonic() + timeout_s
    try:
        panes.inject(dom.name, REQUEST.format(note=shown), ready_timeout_s=timeout_s, why="handoff")
    except NotDelivered as exc:
        raise CommNodeError(f"{dom.name}: the hand-off request was not delivered: {exc}") from None
    # the agent writes the note in its own turn: a tool call seen only as the file's time
    # (no event tells of it), so the file is looked at until it is newer or the time is up
    while _mtime(note) in (None, before):
        if time.monotonic() >= deadline:
            raise CommNodeError(
                f"{dom.name} wrote no hand-off note to {shown} within {timeout_s:g} s: its "
                "context was not cleared"
            )
        time.sleep(POLL_S)
    if clear:
        try:
            panes.inject(
                dom.name,
                "/clear",
                ready_timeout_s=max(1.0, deadline - time.monotonic()),
                allow_command=True,
                why="handoff",
            )
        except NotDelivered as exc:
            raise CommNodeError(
                f"{dom.name}: the note is written ({shown}) but /clear was not typed: {exc}"
            ) from None
    panes.emit(
        Event(
            "agent.handoff",
            f"{dom.name}: handed off (note {shown}"
            + ("; context cleared)" if clear else "; context kept)"),
            agent=dom.name,
            data={"note": shown, "cleared": clear},
        )
    )
    return {"domain": dom.name, "note": note, "cleared": clear}
