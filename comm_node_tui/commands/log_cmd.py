"""comm-node log: the event log, filtered, optionally followed."""

from __future__ import annotations

import json
import sys

from comm_node_tui.commands.context import workspace
from comm_node_tui.protocol.events import LEVELS, Event, follow, tail


def _matcher(args):
    types = args.type or []
    agents = set(args.agent or [])
    min_level = LEVELS.index(args.level) if args.level else 0

    def match(ev: Event) -> bool:
        if types and not any(
            ev.type == t or ev.type.startswith(t.rstrip(".") + ".") for t in types
        ):
            return False
        if agents and ev.agent not in agents:
            return False
        return LEVELS.index(ev.level) >= min_level

    return match


def format_event(ev: Event) -> str:
    """One line for a terminal; agent text is printed as plain text, never interpreted."""
    who = f" [{ev.agent}]" if ev.agent else ""
    level = "" if ev.level == "info" else f" {ev.level.upper()}"
    msg = ev.msg.replace("\n", " ").replace("\x1b", "\\x1b")
    return f"{ev.ts}{level} {ev.type}{who} {msg}"


def log(args) -> int:
    ws = workspace(args)
    match = _matcher(args)

    def out(ev: Event) -> None:
        if args.json:
            sys.stdout.write(json.dumps(ev.to_json(), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(format_event(ev) + "\n")

    if args.lines > 0:
        for ev in tail(ws.paths.events, args.lines, match):
            out(ev)
    sys.stdout.flush()
    if args.follow:
        for ev in follow(ws.paths.events, match, from_end=True):
            out(ev)
            sys.stdout.flush()
    return 0
