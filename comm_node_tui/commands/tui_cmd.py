"""`comm-node` with no subcommand: the control room."""

from __future__ import annotations

from comm_node_tui.commands.context import workspace


def control_room(args) -> int:
    import os
    import sys

    from comm_node_tui.errors import CommNodeError

    try:
        ws = workspace(args)
    except CommNodeError:
        # Outside a workspace, in a terminal: offer the kickoff wizard instead.
        if getattr(args, "workspace", None) or not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise
        if os.path.exists(os.path.join(os.getcwd(), "comm-node.toml")):
            raise  # a broken workspace: its error, not a wizard
        from comm_node_tui.kickoff.wizard import run_wizard

        return run_wizard(os.getcwd())
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Textual with no terminal reads an endless EOF: 100 % of a core until killed.
        raise CommNodeError(
            "the control room needs a terminal (stdin and stdout are not one): run it in a "
            "terminal, or use `comm-node serve` (the engine alone) or `comm-node status`"
        )
    from comm_node_tui.tui.app import ControlRoom

    ControlRoom(ws, layout=args.layout, theme=args.theme).run()
    return 0
