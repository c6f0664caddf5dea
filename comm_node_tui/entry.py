"""The `comm-node` console script (and `python -m comm_node_tui`).

`comm-node hook` runs on nearly every step of every agent (each Claude Code hook event), so it
goes straight to the hook handler: no argparse, whose import (with `re`, `enum`, `gettext`)
costs about as much CPU as starting Python (issue 22, docs/benchmarks.md). The hook command
line Claude Code runs (adapters/claude/settings.py) stays `.../comm-node hook`, so settings
written by any earlier version take this path too. `comm-node send` in its plain forms is
read here too, into the same namespace argparse would build (tests/test_entry.py compares
them); anything else (`--help`, an abbreviation, `--`, a value starting with `-`, an error)
goes to the full CLI (cli.py), which answers as it always did.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["hook"]:
        from comm_node_tui.errors import run_handler

        return run_handler("comm_node_tui.hooks.handler", "main", None)
    if argv[:1] == ["send"]:
        args = send_args(argv[1:])
        if args is not None:
            from comm_node_tui.errors import run_handler

            return run_handler("comm_node_tui.commands.messaging", "send", args)
    from comm_node_tui.cli import main as cli_main

    return cli_main(argv)


class Namespace:
    """What argparse.Namespace is to the handlers: attributes."""

    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)


# `send`'s options (cli.py _send and _common): option -> attribute; `--json` is the flag.
SEND_VALUES = {
    "--to": "to",
    "--type": "type",
    "--task": "task",
    "--priority": "priority",
    "--budget": "budget",
    "--reply-to": "reply_to",
    "--subject": "subject",
    "--workspace": "workspace",
    "-w": "workspace",
    "--domain": "domain",
    "-d": "domain",
}
PRIORITIES = ("low", "normal", "high", "urgent")


def send_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node send REST` parses to, or None when argparse should decide."""
    values: dict[str, object] = {
        "workspace": None,
        "domain": None,
        "version": False,
        "layout": None,
        "theme": "elder",
        "command": "send",
        "handler": "messaging:send",
        "to": None,
        "type": "info",
        "task": None,
        "priority": "normal",
        "budget": None,
        "reply_to": None,
        "subject": None,
        "json": False,
    }
    text = None
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok == "--json":
            values["json"] = True
        elif tok.startswith("-") and tok != "-":
            name, eq, value = tok.partition("=")
            if name not in SEND_VALUES or (eq and name in ("-w", "-d")):
                return None
            if not eq:
                if i == len(rest) or rest[i].startswith("-"):
                    return None
                value = rest[i]
                i += 1
            values[SEND_VALUES[name]] = value
        elif text is None:
            text = tok
        else:
            return None
    if text is None or values["to"] is None or values["priority"] not in PRIORITIES:
        return None
    if values["budget"] is not None:
        try:
            values["budget"] = int(str(values["budget"]))
        except ValueError:
            return None
    return Namespace(**values, text=text)
