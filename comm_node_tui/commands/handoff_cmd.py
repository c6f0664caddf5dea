"""`comm-node handoff DOMAIN`: the operator's hand-off of a full context (issue 17, item 6).

Asks the agent, through the normal delivery path (AgentPanes.inject: typed only at its free
prompt, never into a dialog), to write its hand-off note to `.comm-node/handoff.md` in its
folder; waits until the note is written and the agent is back at its prompt; then types
`/clear` as a command. The SessionStart(clear) hook then hands the agent its task, contract,
locks, mail, last failure and the note (hooks/handoff.py), so it goes on where it was with an
empty context. Nothing is cleared unless a new note was written: a context is cleared only
once what it held is saved.
"""

from __future__ import annotations

import os
import sys
import time

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import CommNodeError, ConflictError, UsageError

POLL_S = 0.25  # how often the note's file is looked at while the agent writes it

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


def _confirm(name: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"handing off {name} clears its context: confirm with --yes (no terminal to ask)"
        )
    answer = input(f"Ask {name} to write its hand-off note, then clear its context? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CommNodeError("not handed off")


def handoff(args) -> int:
    from comm_node_tui.coordination.pause import read_pause
    from comm_node_tui.hooks.handoff import note_path
    from comm_node_tui.panes.inject import NotDelivered
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.protocol.events import Event

    ws = workspace(args)
    dom = ws.domains.get(args.domain_name)
    if dom is None:
        raise UsageError(f"no domain '{args.domain_name}'")
    if read_pause(ws.paths.state).covers(dom.name):
        raise ConflictError(
            f"{dom.name} is paused: nothing is typed into it (`comm-node resume {dom.name}`)"
        )
    _confirm(dom.name, args.yes)
    note = note_path(dom)
    shown = os.path.relpath(note, dom.path)
    before = _mtime(note)
    panes = AgentPanes(ws)
    deadline = time.monotonic() + args.timeout
    try:
        panes.inject(
            dom.name,
            REQUEST.format(note=shown),
            ready_timeout_s=args.timeout,
            why="handoff",
        )
    except NotDelivered as exc:
        raise CommNodeError(f"{dom.name}: the hand-off request was not delivered: {exc}") from None
    # the agent writes the note in its own turn: wait for a newer file (a tool call of the
    # agent, seen only as the file's time; there is no event to wait on)
    while _mtime(note) in (None, before):
        if time.monotonic() >= deadline:
            raise CommNodeError(
                f"{dom.name} wrote no hand-off note to {shown} within {args.timeout:g} s: its "
                "context was not cleared"
            )
        time.sleep(POLL_S)
    cleared = False
    if not args.no_clear:
        try:
            # inject waits for the free prompt: the agent finishes its turn first
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
        cleared = True
    panes.emit(
        Event(
            "agent.handoff",
            f"{dom.name}: handed off (note {shown}"
            + ("; context cleared)" if cleared else "; context kept)"),
            agent=dom.name,
            data={"note": shown, "cleared": cleared},
        )
    )
    out = {"domain": dom.name, "note": note, "cleared": cleared}
    if args.json:
        print_json(out)
    else:
        what = "its context cleared" if cleared else "its context kept (--no-clear)"
        print(f"{dom.name}: hand-off note written to {shown}; {what}")
    return 0
