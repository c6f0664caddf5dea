"""The `comm-node` console script (and `python -m comm_node_tui`).

`comm-node hook` runs on nearly every step of every agent (each Claude Code hook event), so it
goes straight to the hook handler: no argparse, whose import (with `re`, `enum`, `gettext`)
costs about as much CPU as starting Python (issue 22, docs/benchmarks.md). The hook command
line Claude Code runs (adapters/claude/settings.py) stays `.../comm-node hook`, so settings
written by any earlier version take this path too. `comm-node send`, `inbox` and `status
set` in their plain forms are read here too, into the same namespace argparse would build
(tests/test_entry.py compares them); anything else (`--help`, an abbreviation, `--`, a value
starting with `-`, an error) goes to the full CLI (cli.py), which answers as it always did.
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
    if argv[:1] == ["inbox"]:
        args = inbox_args(argv[1:])
        if args is not None:
            from comm_node_tui.errors import run_handler

            return run_handler("comm_node_tui.commands.messaging", "inbox", args)
    if argv[:2] == ["status", "set"]:
        args = status_set_args(argv[2:])
        if args is not None:
            from comm_node_tui.errors import run_handler

            return run_handler("comm_node_tui.commands.agent", "status_set", args)
    from comm_node_tui.cli import main as cli_main

    return cli_main(argv)


class Namespace:
    """What argparse.Namespace is to the handlers: attributes."""

    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)


# The options every subcommand takes (cli.py _common): option -> attribute.
COMMON_VALUES = {
    "--workspace": "workspace",
    "-w": "workspace",
    "--domain": "domain",
    "-d": "domain",
}
# What argparse puts in every namespace from the top-level parser.
TOP_DEFAULTS = {
    "workspace": None,
    "domain": None,
    "version": False,
    "layout": None,
    "theme": "elder",
}


# `send`'s options (cli.py _send and _common): option -> attribute; `--json` is the flag.
SEND_VALUES = {
    **COMMON_VALUES,
    "--to": "to",
    "--type": "type",
    "--task": "task",
    "--priority": "priority",
    "--budget": "budget",
    "--reply-to": "reply_to",
    "--subject": "subject",
}
PRIORITIES = ("low", "normal", "high", "urgent")


def _plain(
    rest: list[str],
    options: dict[str, str],
    values: dict[str, object],
    positional: str | None,
    flags: tuple[str, ...] = ("json",),
) -> bool:
    """Read the plain form `[--FLAG | OPTION VALUE]... [POSITIONAL]` of REST into `values`
    (`positional`: the attribute of the one positional, None when there is none); False when
    argparse should decide (an unknown or abbreviated option, a value or positional starting
    with `-`, a missing or extra positional, a missing value)."""
    seen = None
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok.startswith("--") and tok[2:].replace("-", "_") in flags:
            values[tok[2:].replace("-", "_")] = True
        elif tok.startswith("-") and tok != "-":
            name, eq, value = tok.partition("=")
            if name not in options or (eq and not name.startswith("--")):
                return False  # `-w=x` is the value "=x" to argparse: its call
            if not eq:
                if i == len(rest) or rest[i].startswith("-"):
                    return False
                value = rest[i]
                i += 1
            values[options[name]] = value
        elif seen is None and positional is not None:
            seen = values[positional] = tok
        else:
            return False
    return positional is None or seen is not None


def send_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node send REST` parses to, or None when argparse should decide."""
    values: dict[str, object] = {
        **TOP_DEFAULTS,
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
    if not _plain(rest, SEND_VALUES, values, "text"):
        return None
    if values["to"] is None or values["priority"] not in PRIORITIES:
        return None
    if values["budget"] is not None:
        try:
            values["budget"] = int(str(values["budget"]))
        except ValueError:
            return None
    return Namespace(**values)


# `status set`'s options (cli.py _status): agents run it "as they go" (their CLAUDE.md), the
# most frequent call after the hooks.
STATUS_SET_VALUES = {**COMMON_VALUES, "--task": "task", "--progress": "progress"}


def status_set_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node status set REST` parses to, or None when argparse should
    decide. (The state is checked by the handler, as after argparse.)"""
    values: dict[str, object] = {
        **TOP_DEFAULTS,
        "command": "status",
        "json": False,
        "status_command": "set",
        "handler": "agent:status_set",
        "task": None,
        "progress": None,
    }
    if not _plain(rest, STATUS_SET_VALUES, values, "state"):
        return None
    return Namespace(**values)


def inbox_args(rest: list[str]) -> Namespace | None:
    """The namespace `comm-node inbox REST` parses to (agents look after every step), or
    None when argparse should decide."""
    values: dict[str, object] = {
        **TOP_DEFAULTS,
        "command": "inbox",
        "unread": False,
        "operator": False,
        "json": False,
        "handler": "messaging:inbox",
    }
    if not _plain(rest, COMMON_VALUES, values, None, ("json", "unread", "operator")):
        return None
    return Namespace(**values)
