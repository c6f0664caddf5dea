"""The `comm-node` command. Agents run it on every action, so it imports only what the
chosen subcommand needs: argparse and the standard library up front, handlers lazily."""

from __future__ import annotations

import argparse
import sys

from comm_node_tui.errors import EXIT_USAGE, CommNodeError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    default = None if top else argparse.SUPPRESS
    p.add_argument(
        "--workspace",
        "-w",
        metavar="DIR",
        default=default,
        help="workspace root (default: $COMM_NODE_WORKSPACE, else walk up)",
    )
    p.add_argument(
        "--domain",
        "-d",
        metavar="NAME",
        default=default,
        help="act as this domain (default: $COMM_NODE_DOMAIN, else the current dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="comm-node",
        description="comm-node: the control room for many Claude Code agents on one project.",
    )
    _common(parser, top=True)
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def cmd(name: str, help: str, handler: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p)
        p.set_defaults(handler=handler)
        return p

    p = cmd("send", "send a message through comm-node", "messaging:send")
    p.add_argument(
        "--to", required=True, help="recipients: a,b or * (every other domain) or operator"
    )
    p.add_argument(
        "--type",
        default="info",
        help="message type (info, request, question, answer, handoff, review, ...; default info)",
    )
    p.add_argument("--task", help="the task this is about")
    p.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    p.add_argument("--budget", type=int, metavar="N", help="the most tokens this message may cost")
    p.add_argument("--reply-to", metavar="ID", help="the id of the message this answers")
    p.add_argument("--subject", help="a one-line subject (default: the first line)")
    p.add_argument("--json", action="store_true", help="print the queued message as JSON")
    p.add_argument("text", metavar="TEXT", help="the message; - reads standard input")

    p = cmd("inbox", "list the messages delivered to this domain", "messaging:inbox")
    p.add_argument("--unread", action="store_true", help="only unread messages")
    p.add_argument("--json", action="store_true", help="a JSON array (see docs/protocol.md)")

    p = cmd("read", "print a message and mark it read", "messaging:read")
    p.add_argument("id", metavar="ID", help="message id (a unique prefix is enough)")
    p.add_argument("--json", action="store_true", help="print the message as JSON")

    p = cmd("status", "this agent's status", "agent:status_show")
    p.add_argument("--json", action="store_true")
    status_sub = p.add_subparsers(dest="status_command", metavar="ACTION", parser_class=_Parser)
    ps = status_sub.add_parser("set", help="set state, task and progress; refresh the heartbeat")
    _common(ps)
    ps.set_defaults(handler="agent:status_set")
    ps.add_argument(
        "state", metavar="STATE", help="starting|busy|idle|waiting|blocked|done|error|ended"
    )
    ps.add_argument("--task", help="the task being worked on")
    ps.add_argument("--progress", help="a short progress note")
    ps.add_argument("--json", action="store_true")

    p = cmd("whoami", "who this agent is: domain, role, scope, peers, budget", "agent:whoami")
    p.add_argument("--json", action="store_true")

    p = cmd("config", "check the workspace configuration", "config_cmd:config")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    pc = config_sub.add_parser("check", help="validate comm-node.toml; exit 1 on problems")
    _common(pc)
    pc.set_defaults(handler="config_cmd:check")
    pc.add_argument("--json", action="store_true")
    pc = config_sub.add_parser("show", help="print the resolved configuration")
    _common(pc)
    pc.set_defaults(handler="config_cmd:show")
    pc.add_argument("--json", action="store_true")

    p = cmd("log", "print the event log", "log_cmd:log")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument(
        "--type",
        "-t",
        action="append",
        metavar="T",
        help="only events of this type (prefix match: 'message' = message.*)",
    )
    p.add_argument("--agent", "-a", action="append", metavar="A", help="only this agent's")
    p.add_argument(
        "--level",
        choices=["debug", "info", "warn", "error"],
        help="only events at this level or above",
    )
    p.add_argument(
        "-n",
        "--lines",
        type=int,
        default=50,
        metavar="N",
        help="how many past events (default 50; 0 = none)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = cmd("serve", "run the engine headless (one per workspace)", "serve:serve")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print events")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from comm_node_tui import __version__

        print(f"comm-node {__version__}")
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        if args.command == "status":
            handler = "agent:status_show"
        elif args.command:
            parser.parse_args([args.command, "--help"])
        else:
            parser.print_help()
            return 0
    module_name, func_name = handler.split(":")
    try:
        import importlib

        module = importlib.import_module(f"comm_node_tui.commands.{module_name}")
        return int(getattr(module, func_name)(args) or 0)
    except CommNodeError as exc:
        print(f"comm-node: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"comm-node: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
