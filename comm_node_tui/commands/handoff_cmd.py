"""`comm-node handoff DOMAIN`: the operator's hand-off of a full context (operator/handoff.py
does it: the note asked for through the delivery path, then `/clear`), after the operator's
confirmation."""

from __future__ import annotations

import sys

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import CommNodeError, UsageError


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
    from comm_node_tui.operator.handoff import hand_off
    from comm_node_tui.panes.manager import AgentPanes

    ws = workspace(args)
    if args.domain_name not in ws.domains:
        raise UsageError(f"no domain '{args.domain_name}'")
    _confirm(args.domain_name, args.yes)
    out = hand_off(AgentPanes(ws), args.domain_name, args.timeout, clear=not args.no_clear)
    if args.json:
        print_json(out)
    else:
        what = "its context cleared" if out["cleared"] else "its context kept (--no-clear)"
        print(f"{out['domain']}: hand-off note written to {out['note']}; {what}")
    return 0
