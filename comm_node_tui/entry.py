"""The `comm-node` console script (and `python -m comm_node_tui`).

`comm-node hook` runs on nearly every step of every agent (each Claude Code hook event), so it
goes straight to the hook handler: no argparse, whose import (with `re`, `enum`, `gettext`)
costs about as much CPU as starting Python (issue 22, docs/benchmarks.md). The hook command
line Claude Code runs (adapters/claude/settings.py) stays `.../comm-node hook`, so settings
written by any earlier version take this path too. Everything else, including `hook` with
options, goes to the full CLI (cli.py).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["hook"]:
        from comm_node_tui.errors import run_handler

        return run_handler("comm_node_tui.hooks.handler", "main", None)
    from comm_node_tui.cli import main as cli_main

    return cli_main(argv)
