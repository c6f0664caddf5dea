"""comm-node log: the event log, filtered, optionally followed."""

from __future__ import annotations

import json
import sys
import threading

from comm_node_tui.commands.context import workspace
from comm_node_tui.protocol.events import LEVELS, Event, follow, tail
from comm_node_tui.protocol.printable import printable


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
    # [cluster]: the other machines' events too, as this machine's engine received them
    # (cluster/remote_log.py); without it nothing else is read and no thread started
    cluster = ws.settings.cluster.enabled
    lock = threading.Lock()  # two followers print: whole lines, one at a time

    def out(ev: Event, remote: bool = False) -> None:
        if args.json:
            rec = ev.to_json()
            node = ev.data.get("node")
            if remote and isinstance(node, str):
                rec["node"] = node
            line = json.dumps(rec, ensure_ascii=False)
        elif remote:  # another machine's text: printable only (protocol/printable.py)
            line = printable(format_event(ev))
        else:
            line = format_event(ev)
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    shown: list[tuple[Event, bool]] = []  # (event, from another machine)
    if args.lines > 0:
        shown = [(ev, False) for ev in tail(ws.paths.events, args.lines, match)]
        if cluster:
            from comm_node_tui.cluster.remote_log import remote_log_path

            theirs = tail(remote_log_path(ws.paths.state), args.lines, match)
            shown += [(ev, True) for ev in theirs]
            shown.sort(key=lambda pair: pair[0].ts)  # by time: each log is in order
            shown = shown[-args.lines :]
    follower = None
    if args.follow and cluster:
        from comm_node_tui.cluster.remote_log import Follower

        # where it starts is taken before the first line is printed: what arrives after
        # the operator (or a script) saw that line is followed
        follower = Follower(ws.paths.state)
    for ev, remote in shown:
        out(ev, remote)
    sys.stdout.flush()
    if args.follow:
        if follower is not None:
            theirs_from = follower

            def remote() -> None:
                for ev in theirs_from.events(lambda: False):
                    if match(ev):
                        out(ev, True)

            threading.Thread(target=remote, name="cn-log-remote", daemon=True).start()
        for ev in follow(ws.paths.events, match, from_end=True):
            out(ev)
    return 0
