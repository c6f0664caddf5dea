"""pause, resume: the operator's real stop, per agent or for everyone (docs/cli.md)."""

from __future__ import annotations

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import UsageError


def _names(args) -> list[str] | None:
    """The agents named, or None for --all; one or the other."""
    if args.all and args.domains:
        raise UsageError("name domains or give --all, not both")
    if not args.all and not args.domains:
        raise UsageError("name a domain, or give --all")
    return None if args.all else list(args.domains)


def _run(args, verb: str) -> int:
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.operator.actions import OperatorActions

    names = _names(args)
    ws = workspace(args)
    coord = Coordinator(ws)
    for name in names or ():
        ws.domain(name)  # an unknown name fails here, before anything is paused
    ops = OperatorActions(ws, lambda: coord)
    line = ops.pause(names) if verb == "pause" else ops.resume(names)
    if args.json:
        print_json(ops.pause_state().to_json())
    else:
        print(line)
    return 0


def pause(args) -> int:
    return _run(args, "pause")


def resume(args) -> int:
    return _run(args, "resume")
