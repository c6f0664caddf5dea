"""up, down, attach, inject, interrupt, kill, restart, peek: the operator's hand on panes."""

from __future__ import annotations

import sys

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import CommNodeError, ConflictError, UsageError


def _panes(args, ws=None):
    from comm_node_tui.panes.manager import AgentPanes

    return AgentPanes(ws or workspace(args))


def up(args) -> int:
    from comm_node_tui.panes.manager import conversation_words

    ap = _panes(args)
    out = ap.up(args.domains or None, fresh=args.fresh)
    if args.json:
        print_json(out)
    else:
        for row in out:
            line = f"{row['domain']:<14} {row['action']:<10} pane {row['pane']} pid {row['pid']}"
            if row["action"] != "adopted":  # an adopted agent keeps what it is doing
                line += f", {conversation_words(row)}"
            print(line)
        where = f"-L {ap.tmux.socket} " if ap.tmux.socket else ""
        print(
            f"session {ap.session}: `tmux {where}attach -t {ap.session}` or "
            "`comm-node attach DOMAIN`"
        )
    return 0


def down(args) -> int:
    out = _panes(args).down()
    print_json(out) if args.json else print(
        f"session {out['session']} ended; stopped {', '.join(out['killed']) or 'no agents'}"
    )
    return 0


def attach(args) -> int:
    _panes(args).attach(args.domain_name)
    return 0


def inject(args) -> int:
    text = args.text
    if text == "-":
        data = sys.stdin.buffer.read(1024 * 1024 + 1)
        if len(data) > 1024 * 1024:
            raise CommNodeError("standard input is over 1 MiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommNodeError(f"standard input is not UTF-8 (byte {exc.start})") from None
        text = text[:-1] if text.endswith("\n") else text
    if not text:
        raise UsageError("nothing to inject")
    ws = workspace(args)
    if not args.force:
        from comm_node_tui.coordination.pause import read_pause

        if read_pause(ws.paths.state).covers(args.domain_name):
            raise ConflictError(
                f"{args.domain_name} is paused: nothing is typed into it "
                f"(`comm-node resume {args.domain_name}`, or --force)"
            )
    from comm_node_tui.panes.inject import NotDelivered

    try:
        out = _panes(args, ws).inject(
            args.domain_name, text, ready_timeout_s=args.timeout, allow_command=args.command
        )
    except NotDelivered as exc:
        if args.json:
            print_json(
                {"delivered": False, "reason": exc.reason, "typed": exc.typed, "error": str(exc)}
            )
        raise CommNodeError(f"{args.domain_name}: {exc}") from None
    if args.json:
        print_json({"delivered": True, **out})
    else:
        note = " as plain text (leading ! or /)" if out["protected"] else ""
        print(f"injected into {args.domain_name}{note} ({out['attempts']} Enter)")
    return 0


def approve(args) -> int:
    out = _panes(args).answer(args.domain_name, allow=True)
    print_json(out) if args.json else print(f"{args.domain_name}: approved once")
    return 0


def deny(args) -> int:
    out = _panes(args).answer(args.domain_name, allow=False)
    print_json(out) if args.json else print(f"{args.domain_name}: denied")
    return 0


def interrupt(args) -> int:
    _panes(args).interrupt(args.domain_name)
    print(f"interrupted {args.domain_name}")
    return 0


def kill(args) -> int:
    out = _panes(args).kill(args.domain_name, grace_s=args.grace)
    print_json(out) if args.json else print(
        f"killed {args.domain_name} ({len(out['pids'])} processes, "
        f"{len(out['killed'])} needed SIGKILL)"
    )
    return 0


def restart(args) -> int:
    from comm_node_tui.panes.manager import conversation_words

    out = _panes(args).restart(args.domain_name, fresh=args.fresh)
    print_json(out) if args.json else print(
        f"{args.domain_name}: {out['action']} in pane {out['pane']} (pid {out['pid']}), "
        f"{conversation_words(out)}"
    )
    return 0


def peek(args) -> int:
    text = _panes(args).peek(args.domain_name, lines=args.lines, ansi=args.ansi)
    if not args.ansi:
        from comm_node_tui.adapters.screen import clean

        text = clean(text)
    sys.stdout.write(text + "\n")
    return 0
