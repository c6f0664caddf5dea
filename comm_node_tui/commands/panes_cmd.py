"""up, down, attach, inject, interrupt, kill, restart, peek: the operator's hand on panes."""

from __future__ import annotations

import sys

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import EXIT_ERROR, CommNodeError, ConflictError, UsageError


def _panes(args, ws=None):
    from comm_node_tui.panes.manager import AgentPanes

    return AgentPanes(ws or workspace(args))


def _elsewhere(args, action: str, ws=None, **kwargs) -> bool:
    """([cluster]) An agent another machine runs: the action is a request to its engine,
    which does what its own room would (operator/remote.py); its line is printed here.
    False when the agent runs on this machine (or there is no cluster)."""
    ws = ws or workspace(args)
    if not ws.settings.cluster.enabled:
        return False
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.operator.actions import OperatorActions

    name = ws.domain(args.domain_name).name
    coord = Coordinator(ws)
    ops = OperatorActions(ws, lambda: coord)
    if not ops.runs_elsewhere(name):
        return False
    try:
        line = getattr(ops, action)(name, **kwargs)
    finally:
        ops.remote().close()
    print_json({"domain": name, "remote": True, "result": line}) if getattr(
        args, "json", False
    ) else print(f"{name}: {line}")
    return True


def up(args) -> int:
    from comm_node_tui.panes.manager import conversation_words

    ap = _panes(args)
    domains = args.domains or None
    if domains is None:
        from comm_node_tui.integration.coordinator import held_back

        held = held_back(ap.ws)  # the engine starts the integration coordinator when due
        pool = list(ap.ws.domains)
        if ap.ws.settings.cluster.enabled:
            from comm_node_tui.cluster.relay import local_domains

            pool = sorted(local_domains(ap.ws))  # the other machines start their own
        if held or ap.ws.settings.cluster.enabled:
            domains = [n for n in pool if n not in held]
            if not domains:  # (an empty list would read as "every domain" below)
                print(
                    "no agent to start here"
                    + (
                        f" ({', '.join(sorted(held))} waits for the other domains' tasks)"
                        if held
                        else ""
                    )
                )
                return 0
    out = ap.up(domains, fresh=args.fresh)
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


def _only_here(args, what: str) -> None:
    """([cluster]) A terminal reaches only this machine's tmux: one line naming the machine
    that runs the agent, not "no pane"."""
    ws = workspace(args)
    if ws.settings.cluster.enabled and _remote_agent(ws, args.domain_name):
        from comm_node_tui.cluster.view import machine_of

        name = ws.domain(args.domain_name).name
        raise CommNodeError(
            f"{name} runs on {machine_of(ws, name)}: {what} it there "
            f"(`comm-node peek {name}` shows its pane here)"
        )


def attach(args) -> int:
    _only_here(args, "attach to")
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
    if ws.settings.cluster.enabled:
        extra = [f for f in ("force", "wait", "command") if getattr(args, f, False)]
        if extra and _remote_agent(ws, args.domain_name):
            raise UsageError(f"--{extra[0]} is not sent to another machine's engine: run it there")
        if _elsewhere(args, "inject", ws, text=text):
            return 0
    if not args.force:
        from comm_node_tui.coordination.pause import read_pause

        if read_pause(ws.paths.state).covers(args.domain_name):
            raise ConflictError(
                f"{args.domain_name} is paused: nothing is typed into it "
                f"(`comm-node resume {args.domain_name}`, or --force)"
            )
    from comm_node_tui.panes.inject import NotDelivered

    wait = getattr(args, "wait", False)
    try:
        out = _panes(args, ws).inject(
            args.domain_name,
            text,
            ready_timeout_s=args.timeout,
            allow_command=args.command,
            wait_s=args.timeout if wait else None,
        )
    except NotDelivered as exc:
        receipt = _receipt(ws, exc.receipt)
        if args.json:
            print_json(
                {
                    "delivered": False,
                    "reason": exc.reason,
                    "typed": exc.typed,
                    "error": str(exc),
                    "receipt": receipt,
                }
            )
        err = CommNodeError(f"{args.domain_name}: {exc}")
        if wait:
            from comm_node_tui.panes.manager import receipt_reason

            err.exit_code = WAIT_EXIT.get(receipt_reason(exc.reason), EXIT_ERROR)
        raise err from None
    if args.json:
        print_json({"delivered": True, **out, "receipt": _receipt(ws, out.get("receipt"))})
    else:
        note = " as plain text (leading ! or /)" if out["protected"] else ""
        started = f"; turn started in {out['started_s']:.1f}s" if "started_s" in out else ""
        print(
            f"injected into {args.domain_name}{note} ({out['attempts']} Enter){started} "
            f"[{out.get('receipt')}]"
        )
    return 0


# `inject --wait`: one exit code per way a delivery fails (docs/cli.md). Without --wait every
# failure stays exit 1, as before.
WAIT_EXIT = {
    "dialog": 5,  # a dialog is open (or opened): nothing typed into it
    "operator_typing": 6,  # the input box holds text comm-node did not type
    "not_running": 7,  # no pane, or its agent exited
    "not_started": 8,  # typed (and submitted) but no turn started in time
    "busy": 9,  # the agent stayed busy, or another delivery held its typing lock
    "no_prompt": 9,
    "blocked": 10,  # the agent's own hook refused the prompt (a pause)
}


def _receipt(ws, rid: str | None) -> dict | None:
    """The delivery's receipt as `status --json` shows it."""
    if rid is None:
        return None
    from comm_node_tui.engine.world_views import ReceiptView
    from comm_node_tui.protocol.receipts import find, path_in

    rec = find(path_in(ws.paths.state), rid)
    return None if rec is None else ReceiptView.parse(rec).to_json()


def _remote_agent(ws, name: str) -> bool:
    from comm_node_tui.cluster.relay import local_domains

    return ws.domain(name).name not in local_domains(ws)


def approve(args) -> int:
    if _elsewhere(args, "approve"):
        return 0
    out = _panes(args).answer(args.domain_name, allow=True)
    print_json(out) if args.json else print(f"{args.domain_name}: approved once")
    return 0


def deny(args) -> int:
    if _elsewhere(args, "deny"):
        return 0
    out = _panes(args).answer(args.domain_name, allow=False)
    print_json(out) if args.json else print(f"{args.domain_name}: denied")
    return 0


def interrupt(args) -> int:
    if _elsewhere(args, "interrupt"):
        return 0
    _panes(args).interrupt(args.domain_name)
    print(f"interrupted {args.domain_name}")
    return 0


def kill(args) -> int:
    if _elsewhere(args, "kill"):
        return 0
    out = _panes(args).kill(args.domain_name, grace_s=args.grace)
    print_json(out) if args.json else print(
        f"killed {args.domain_name} ({len(out['pids'])} processes, "
        f"{len(out['killed'])} needed SIGKILL)"
    )
    return 0


def restart(args) -> int:
    from comm_node_tui.panes.manager import conversation_words

    if _elsewhere(args, "restart", fresh=args.fresh):
        return 0
    out = _panes(args).restart(args.domain_name, fresh=args.fresh)
    print_json(out) if args.json else print(
        f"{args.domain_name}: {out['action']} in pane {out['pane']} (pid {out['pid']}), "
        f"{conversation_words(out)}"
    )
    return 0


def peek(args) -> int:
    ws = workspace(args)
    if ws.settings.cluster.enabled and _remote_agent(ws, args.domain_name):
        # another machine's pane: its engine captures it (cluster/ops.py, a read-only op)
        from comm_node_tui.coordination.coordinator import Coordinator
        from comm_node_tui.operator.actions import OperatorActions

        coord = Coordinator(ws)
        ops = OperatorActions(ws, lambda: coord)
        try:
            text = ops.peek(ws.domain(args.domain_name).name, lines=args.lines, ansi=args.ansi)
        finally:
            ops.remote().close()
    else:
        text = _panes(args, ws).peek(args.domain_name, lines=args.lines, ansi=args.ansi)
    if not args.ansi:
        from comm_node_tui.adapters.screen import clean

        text = clean(text)
    sys.stdout.write(text + "\n")
    return 0
