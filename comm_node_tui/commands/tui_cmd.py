"""`comm-node` with no subcommand: the control room."""

from __future__ import annotations

from comm_node_tui.commands.context import workspace


def control_room(args) -> int:
    ws = workspace(args)  # outside a workspace: one line that says how to start one
    from comm_node_tui.tui.app import ControlRoom

    ControlRoom(ws, layout=args.layout, theme=args.theme).run()
    return 0
