"""The `comm-node` command.

Agents run it on every action, so start-up is kept lean: only the standard library up front,
only the parser of the subcommand named on the command line is built, and each handler
module is imported when its command runs (bench/send_startup.py measures this).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from comm_node_tui.errors import EXIT_USAGE, run_handler

TYPE_CHECKING = False  # annotations only: typing costs the agents' CLI import time
if TYPE_CHECKING:
    from typing import Any, NoReturn

DESCRIPTION = "comm-node: the control room for many Claude Code agents on one project."


def _formatter(prog: str) -> argparse.HelpFormatter:
    # An explicit width keeps argparse from importing shutil to ask the terminal (~3 ms).
    try:
        width = int(os.environ.get("COLUMNS", "")) - 2
    except ValueError:
        width = 98
    return argparse.HelpFormatter(prog, width=max(40, min(width, 118)))


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, not usage + error
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


def _json(p: argparse.ArgumentParser, help: str = "machine-readable output (docs/cli.md)") -> None:
    p.add_argument("--json", action="store_true", help=help)


def _send(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="messaging:send")
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
    _json(p, "print the queued message as JSON")
    p.add_argument("text", metavar="TEXT", help="the message; - reads standard input")


def _operator(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--operator",
        action="store_true",
        help="the operator's mail (messages sent --to operator) instead of a domain's",
    )


def _inbox(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="messaging:inbox")
    p.add_argument("--unread", action="store_true", help="only unread messages")
    _operator(p)
    _json(p, "a JSON array of messages (docs/protocol.md)")


def _read(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="messaging:read")
    p.add_argument("id", metavar="ID", help="message id (a unique prefix is enough)")
    _operator(p)
    _json(p, "print the message as JSON")


def _status(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="agent:status_show")
    _json(p)
    sub = p.add_subparsers(dest="status_command", metavar="ACTION", parser_class=_Parser)
    ps = sub.add_parser("set", help="set state, task and progress; refresh the heartbeat")
    _common(ps)
    ps.set_defaults(handler="agent:status_set")
    ps.add_argument(
        "state", metavar="STATE", help="starting|busy|idle|waiting|blocked|done|error|ended"
    )
    ps.add_argument("--task", help="the task being worked on")
    ps.add_argument("--progress", help="a short progress note")
    _json(ps)


def _whoami(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="agent:whoami")
    _json(p)


def _config(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(
        dest="config_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    for name, help, handler in (
        ("check", "validate comm-node.toml; exit 1 on problems", "config_cmd:check"),
        ("show", "print the resolved configuration", "config_cmd:show"),
    ):
        pc = sub.add_parser(name, help=help, description=help)
        _common(pc)
        pc.set_defaults(handler=handler)
        _json(pc)


def _log(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="log_cmd:log")
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
    _json(p, "one JSON object per line")


def _serve(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="serve:serve")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print events")


def _actions(p: argparse.ArgumentParser, table: list[tuple]) -> None:
    """Sub-actions: (name, help, handler, builder or None)."""
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    for name, help, handler, build in table:
        pa = sub.add_parser(name, help=help, description=help)
        _common(pa)
        pa.set_defaults(handler=handler)
        if build:
            build(pa)


def _lock(p: argparse.ArgumentParser) -> None:
    def acquire(pa: argparse.ArgumentParser) -> None:
        pa.add_argument(
            "patterns",
            nargs="+",
            metavar="PATTERN",
            help="gitignore-style globs relative to the domain's directory",
        )
        pa.add_argument("--shared", action="store_true", help="a shared (read) lock")
        pa.add_argument("--ttl", type=float, metavar="SECONDS", help="default 900")
        pa.add_argument("--reason", default="", help="why (shown to whoever conflicts)")
        _json(pa)

    def release(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("patterns", nargs="*", metavar="PATTERN")
        pa.add_argument("--all", action="store_true", help="release every lock this domain holds")
        _json(pa)

    def renew(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("patterns", nargs="*", metavar="PATTERN", help="default: all of mine")
        pa.add_argument("--ttl", type=float, metavar="SECONDS", help="default 900")
        _json(pa)

    _actions(
        p,
        [
            (
                "acquire",
                "take advisory locks (all or none); exit 3 conflict, 4 outside scope",
                "coord_cmd:lock_acquire",
                acquire,
            ),
            ("release", "release locks", "coord_cmd:lock_release", release),
            ("renew", "extend locks", "coord_cmd:lock_renew", renew),
            ("list", "every lock held in the workspace", "coord_cmd:lock_list", _json),
        ],
    )


def _task(p: argparse.ArgumentParser) -> None:
    def ready(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("--all", action="store_true", help="every domain's ready tasks")
        _json(pa)

    def one(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("id", metavar="ID")
        _json(pa)

    def done(pa: argparse.ArgumentParser) -> None:
        one(pa)
        pa.add_argument(
            "--artifact",
            action="append",
            default=[],
            metavar="PATH",
            help="publish this file as an artifact (repeatable)",
        )
        pa.add_argument(
            "--force",
            action="store_true",
            help="the operator closes it without the verify gate (needs --reason; logged)",
        )
        pa.add_argument("--by", default="operator", help="who overrides (with --force)")
        pa.add_argument("--reason", default="", help="why the gate is skipped (with --force)")

    def fail(pa: argparse.ArgumentParser) -> None:
        one(pa)
        pa.add_argument("--reason", required=True)

    def reopen(pa: argparse.ArgumentParser) -> None:
        one(pa)
        pa.add_argument("--reason", default="", help="why (logged)")

    def fields(pa: argparse.ArgumentParser, *, adding: bool) -> None:
        """The keys of a native task (tasks.toml); in `edit` a list option replaces the list
        and an empty value ("") removes the key."""
        pa.add_argument("--title", help="required for add" if adding else None)
        # the common --domain ("act as this domain") names the task's domain here: these
        # commands are the operator's, who acts as no domain
        pa._option_string_actions["--domain"].help = "the domain that does it"
        pa.add_argument("--priority", type=int, metavar="0-4", help="0 is the highest")
        pa.add_argument(
            "--depends-on", action="append", metavar="ID", help="a blocking task (repeatable)"
        )
        pa.add_argument("--parent", metavar="ID", help="the parent task")
        pa.add_argument("--done-when", action="append", metavar="TEXT", help="a criterion")
        pa.add_argument("--verify", action="append", metavar="CMD", help="a gate command")
        pa.add_argument("--artifacts", action="append", metavar="NAME", help="to publish")
        pa.add_argument("--notify", action="append", metavar="DOMAIN", help="told when done")
        pa.add_argument("--notes", help="context handed to the agent with its claim")
        _json(pa)

    def add(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("id", nargs="?", metavar="ID", help="default: the next free id")
        fields(pa, adding=True)

    def edit(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("id", metavar="ID")
        fields(pa, adding=False)
        pa.add_argument("--add-dep", action="append", default=[], metavar="ID", help="one more")
        pa.add_argument("--remove-dep", action="append", default=[], metavar="ID", help="one less")

    _actions(
        p,
        [
            ("ready", "what's next: ready tasks for this domain", "coord_cmd:task_ready", ready),
            ("list", "every task with its status", "coord_cmd:task_list", _json),
            ("show", "one task, what blocks it and what it unblocks", "coord_cmd:task_show", one),
            (
                "claim",
                "claim a ready task (exit 3 if someone else has it)",
                "coord_cmd:task_claim",
                one,
            ),
            (
                "done",
                "close a task you claimed once its verify commands pass (exit 5 if not)",
                "coord_cmd:task_done",
                done,
            ),
            ("fail", "give a task up as failed (it becomes blocked)", "coord_cmd:task_fail", fail),
            (
                "reopen",
                "a failed, parked or closed task back to open (parked: the operator only)",
                "coord_cmd:task_reopen",
                reopen,
            ),
            ("add", "add a native task to tasks.toml (the operator)", "coord_cmd:task_add", add),
            ("edit", "change a native task (the operator)", "coord_cmd:task_edit", edit),
        ],
    )


def _budget(p: argparse.ArgumentParser) -> None:
    def request(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("tokens", type=int, metavar="N")
        pa.add_argument("--reason", required=True)
        _json(pa)

    def grant(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("target", metavar="DOMAIN")
        pa.add_argument("tokens", type=int, metavar="N")
        pa.add_argument("--reason", default="")
        _json(pa)

    _actions(
        p,
        [
            (
                "show",
                "budgets: base, granted, spent, left, efficiency",
                "coord_cmd:budget_show",
                _json,
            ),
            (
                "request",
                "ask for more tokens (the [budgets] policy decides)",
                "coord_cmd:budget_request",
                request,
            ),
            ("grant", "the operator grants tokens to a domain", "coord_cmd:budget_grant", grant),
        ],
    )


def _artifact(p: argparse.ArgumentParser) -> None:
    def publish(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("file", metavar="FILE")
        pa.add_argument("--name", help="the artifact's name (default: the file's name)")
        _json(pa)

    _actions(
        p,
        [
            (
                "publish",
                "publish a file as an artifact of this domain",
                "coord_cmd:artifact_publish",
                publish,
            ),
            ("list", "every published artifact", "coord_cmd:artifact_list", _json),
        ],
    )


def _pane_cmd(handler: str, *extra: str) -> Callable[[argparse.ArgumentParser], None]:
    def build(p: argparse.ArgumentParser) -> None:
        p.set_defaults(handler=f"panes_cmd:{handler}")
        p.add_argument("domain_name", metavar="DOMAIN")
        if "text" in extra:
            p.add_argument("text", metavar="TEXT", help="typed literally; - reads stdin")
            p.add_argument(
                "--timeout",
                type=float,
                default=30.0,
                metavar="S",
                help="wait up to S seconds for the agent's free prompt (default 30); a dialog, "
                "a busy agent or text someone is typing is never typed over; with --wait, "
                "also up to S seconds for the turn to start",
            )
            p.add_argument(
                "--command",
                action="store_true",
                help="let a leading ! or / act (a shell or slash command in Claude Code); "
                "without it such text is sent as plain text",
            )
            p.add_argument(
                "--force",
                action="store_true",
                help="type it even into a paused agent (its hook still blocks a prompt)",
            )
            p.add_argument(
                "--wait",
                action="store_true",
                help="return only once the agent's own hook saw the turn start (receipt); "
                "each way it fails has its exit code (docs/cli.md)",
            )
        if "fresh" in extra:
            p.add_argument("--fresh", action="store_true", help=FRESH_HELP)
        if "grace" in extra:
            p.add_argument(
                "--grace",
                type=float,
                default=3.0,
                metavar="S",
                help="seconds between TERM and KILL (default 3)",
            )
        if "peek" in extra:
            p.add_argument(
                "-n",
                "--lines",
                type=int,
                default=0,
                metavar="N",
                help="history lines above the screen",
            )
            p.add_argument("--ansi", action="store_true", help="keep colours")
        _json(p)

    return build


def _hook(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="hook_cmd:hook")


def _hooks(p: argparse.ArgumentParser) -> None:
    def target(pa: argparse.ArgumentParser) -> None:
        pa.add_argument("--all", action="store_true", help="every domain (default: this one)")
        pa.add_argument(
            "--git",
            action="store_true",
            help="the git pre-commit boundary guard instead, in every domain's repository "
            "(or --domain's)",
        )
        _json(pa)

    _actions(
        p,
        [
            (
                "install",
                "merge comm-node's hooks into .claude/settings.json",
                "hook_cmd:install",
                target,
            ),
            (
                "uninstall",
                "remove comm-node's hooks (and only those)",
                "hook_cmd:uninstall",
                target,
            ),
        ],
    )


def _check(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="boundary_cmd:check")
    p.add_argument(
        "--staged", action="store_true", help="only what the next commit holds (the index)"
    )
    p.add_argument("--repo", metavar="DIR", help="only the domains in this git repository")
    p.add_argument("--hook", action="store_true", help=argparse.SUPPRESS)  # the git hook's mode
    _json(p, "JSON: violations, unparsed files, cross-domain edges (docs/boundaries.md)")


def _graph(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="boundary_cmd:graph")
    p.add_argument("--format", choices=["dot", "mermaid"], default="dot", help="default dot")


def _diff(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="diff_cmd:diff")
    p.add_argument(
        "domain_name", metavar="DOMAIN", nargs="?", help="default: this agent's own domain"
    )
    p.add_argument("--patch", "-p", action="store_true", help="the diff itself, file by file")
    _json(p, 'JSON: {"domain", "mode", "branch", "base", "since", "files": [...]}')


def _merge(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="merge_cmd:merge")
    p.add_argument("domain_name", metavar="DOMAIN", nargs="?", help="queue this domain's branch")
    p.add_argument("--status", action="store_true", help="list the queue")
    p.add_argument(
        "--run",
        action="store_true",
        help="take the queued entries now, one pass (the engine does this by itself)",
    )
    _json(p)


def _init(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="kickoff_cmd:init")
    p.add_argument(
        "--from",
        dest="plan",
        metavar="PLAN.toml",
        help="no questions: the plan (comm-node.toml shape, docs/kickoff.md)",
    )
    p.add_argument("--yes", "-y", action="store_true", help="apply without asking")
    _json(p, "with --from and without --yes: the changes it would make, as JSON")


def _kickoff(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="kickoff_cmd:kickoff")
    p.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="per agent (default 60)"
    )
    p.add_argument("--retries", type=int, default=1, metavar="N", help="restarts of a silent agent")
    p.add_argument(
        "--no-prompt", action="store_true", help="send START messages but type no first prompt"
    )
    _json(p)


def _demo(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="demo_cmd:demo")
    p.add_argument("--dir", metavar="DIR", help="where (default: a new temporary directory)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X", help="scale every delay")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="randomness (default 1)")
    p.add_argument(
        "--headless", action="store_true", help="no control room: run the plan, print a summary"
    )
    p.add_argument(
        "--agents",
        choices=["claude", "simulated"],
        help="real Claude Code (the pinned build, offline, against the scripted model) or "
        "simulated agents (default: claude when it is installed, else simulated)",
    )
    p.add_argument("--stalls", type=int, default=1, metavar="N", help="simulated agents that stall")
    p.add_argument(
        "--crashes", type=int, default=1, metavar="N", help="simulated agents that crash"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="S",
        help="headless: give up after S seconds at speed 1 (default 900)",
    )
    _json(p, "headless: the summary as JSON")


def _usage(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="usage_cmd:usage")
    _json(
        p,
        'JSON: {"domains": {NAME: {"input", "output", "cache_write", "cache_read", '
        '"total", "cost_usd", "tokens_per_min"}}}',
    )


FRESH_HELP = "start a new conversation instead of resuming the agent's last one"


def _up(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="panes_cmd:up")
    p.add_argument("domains", nargs="*", metavar="DOMAIN", help="default: every domain")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="agents that start (their pane gone or dead) begin new conversations instead "
        "of resuming their last ones",
    )
    _json(p)


def _down(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="panes_cmd:down")
    _json(p)


def _pause(handler: str) -> Callable[[argparse.ArgumentParser], None]:
    def build(p: argparse.ArgumentParser) -> None:
        p.set_defaults(handler=f"pause_cmd:{handler}")
        p.add_argument("domains", nargs="*", metavar="DOMAIN", help="these agents")
        p.add_argument("--all", action="store_true", help="every agent")
        _json(p, 'JSON: the pause now in force, {"all", "domains", "paused_at"}')

    return build


def _handoff(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="handoff_cmd:handoff")
    p.add_argument("domain_name", metavar="DOMAIN")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="wait up to S seconds for the agent's prompt and its note (default 600)",
    )
    p.add_argument("--no-clear", action="store_true", help="ask for the note but keep the context")
    _json(p, 'JSON: {"domain", "note", "cleared"}')


def _doctor(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="doctor_cmd:doctor")
    _json(p, 'JSON: {"ok", "exit_code", "checks": [{"name", "status", "detail", "fix"}]}')


def _model(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(
        dest="model_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    help = "serve the scripted model until Ctrl-C; print what to export (docs/model.md)"
    ps = sub.add_parser("serve", help=help, description=help)
    ps.set_defaults(handler="model_cmd:serve")
    ps.add_argument("--script", metavar="FILE", help="default: only the built-in CN_* directives")
    ps.add_argument("--port", type=int, default=0, metavar="N", help="default: any free port")
    ps.add_argument("--log", metavar="FILE", help="append every request to FILE as JSON lines")
    ps.add_argument("--home", metavar="DIR", help="prepare DIR as a private HOME for claude")
    ps.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="DIR",
        help="with --home: a folder claude may start in without the trust dialog (repeatable)",
    )
    ps.add_argument(
        "--wrapper",
        metavar="FILE",
        help="with --home: write an executable that runs claude "
        "with that environment (for [agents] command)",
    )
    ps.add_argument("--claude", default="claude", metavar="BIN", help="what --wrapper runs")
    ps.add_argument("--quiet", "-q", action="store_true", help="no line per request")
    help = "validate a script; exit 1 with a one-line error"
    pc = sub.add_parser("check", help=help, description=help)
    pc.set_defaults(handler="model_cmd:check")
    pc.add_argument("script", metavar="FILE")


def _web(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="web_cmd:web")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="H",
        help="the address to listen on (default 127.0.0.1; another one warns: docs/web.md)",
    )
    p.add_argument("--port", type=int, default=8765, metavar="N", help="default 8765; 0: any")
    p.add_argument("--viewer", action="store_true", help="read-only rooms: nothing acts on agents")
    p.add_argument(
        "--max-rooms", type=int, default=4, metavar="N", help="browser tabs at once (default 4)"
    )


def _trust(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="trust_cmd:trust")
    p.add_argument("domains", nargs="*", metavar="DOMAIN", help="default: every domain")
    p.add_argument("--yes", "-y", action="store_true", help="record it without asking")
    p.add_argument(
        "--file",
        metavar="PATH",
        help="Claude Code's global file (default: $CLAUDE_CONFIG_DIR/.claude.json, "
        "else ~/.claude.json)",
    )
    _json(p)


def _cluster(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(
        dest="cluster_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    help = "start a local NATS JetStream server for a trial, until Ctrl-C (docs/cluster.md)"
    pu = sub.add_parser("up", help=help, description=help)
    pu.set_defaults(handler="cluster_cmd:up")
    pu.add_argument("--port", type=int, default=4222, metavar="N", help="default 4222")
    pu.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    pu.add_argument("--dir", default="", help="default <workspace>/.comm-node/nats")
    pu.add_argument("--name", default="comm-node", help="the server's name")
    help = "each machine's engine (alive or silent), its agents, what waits for it"
    ps = sub.add_parser("status", help=help, description=help)
    ps.set_defaults(handler="cluster_cmd:status")
    _json(ps)


# name -> (one-line help, builder). Order is the order of `comm-node --help`.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "send": ("send a message through comm-node", _send),
    "inbox": ("list the messages delivered to this domain", _inbox),
    "read": ("print a message and mark it read", _read),
    "status": ("the world: agents, heartbeats, tasks, locks; `status set` sets mine", _status),
    "whoami": ("who this agent is: domain, role, scope, peers, budget", _whoami),
    "lock": ("advisory file locks: acquire, release, renew, list", _lock),
    "task": ("the task DAG: ready, list, show, claim, done, fail, reopen, add, edit", _task),
    "budget": ("communication budgets: show, request, grant", _budget),
    "artifact": ("artifacts: publish, list", _artifact),
    "hook": ("(run by Claude Code hooks) report state, guard edits, deliver mail", _hook),
    "hooks": (
        "install or uninstall comm-node's Claude Code hooks (--git: the commit guard)",
        _hooks,
    ),
    "check": ("boundaries: changes outside scopes, imports that break the rules", _check),
    "graph": ("the domain dependency graph (dot or mermaid), violations in red", _graph),
    "diff": ("the files a domain changed since its base, and the diff (--patch)", _diff),
    "merge": (
        "queue a domain's branch for the merge queue; --status lists it, --run takes it",
        _merge,
    ),
    "usage": ("real token use and cost per domain, from Claude Code transcripts", _usage),
    "up": ("start (or adopt) the agents' tmux session", _up),
    "down": ("stop every agent and end the tmux session", _down),
    "attach": ("go to an agent's pane", _pane_cmd("attach")),
    "inject": ("type a message into an agent's pane and submit it", _pane_cmd("inject", "text")),
    "interrupt": ("interrupt an agent (Escape)", _pane_cmd("interrupt")),
    "approve": ("allow once the tool an agent's permission prompt asks for", _pane_cmd("approve")),
    "deny": ("refuse the tool an agent's permission prompt asks for", _pane_cmd("deny")),
    "kill": ("kill an agent's process tree and its pane", _pane_cmd("kill", "grace")),
    "restart": (
        "restart an agent in its pane, resuming its conversation (--fresh: a new one)",
        _pane_cmd("restart", "fresh"),
    ),
    "peek": ("print an agent's screen", _pane_cmd("peek", "peek")),
    "pause": (
        "stop agents (DOMAIN ... or --all): their tools and prompts refused, nothing typed "
        "into them, no new claims; each is interrupted",
        _pause("pause"),
    ),
    "resume": ("end the pause of DOMAIN ... or of every agent (--all)", _pause("resume")),
    "handoff": (
        "ask an agent to write its hand-off note (.comm-node/handoff.md), then clear its "
        "context (/clear); asks for confirmation",
        _handoff,
    ),
    "config": ("check or show the workspace configuration", _config),
    "doctor": (
        "is everything ready? tmux, Claude Code, hooks, config, the tmux server: one line "
        "each; exit 0 OK, 1 FAIL, 2 only WARN",
        _doctor,
    ),
    "log": ("print the event log", _log),
    "demo": ("real Claude Code agents, offline, and the control room: no API key needed", _demo),
    "init": ("lay out a workspace: the wizard, or --from PLAN.toml --yes", _init),
    "kickoff": ("the kickoff meeting: start every agent, wait for each, send START", _kickoff),
    "serve": ("run the engine headless (one per workspace)", _serve),
    "web": ("the control room in a browser, behind a token (needs the web extra)", _web),
    "trust": ("tell Claude Code to trust the domain folders (asks first)", _trust),
    "model": ("the scripted model: rehearse with real Claude Code, no tokens spent", _model),
    "cluster": ("engines on several machines through NATS: up, status", _cluster),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's (what one invocation needs)."""
    parser = _Parser(prog="comm-node", description=DESCRIPTION)
    _common(parser, top=True)
    parser.add_argument("--version", action="store_true", help="print the version")
    parser.add_argument(
        "--layout",
        default=None,
        help="control room layout: default, wall, compact (layouts/*.tcss); "
        "without it, chosen by the terminal's size",
    )
    parser.add_argument(
        "--theme", default="elder", help="control room theme (themes/*.toml or a Textual theme)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help, build) in COMMANDS.items():
        if only is None or name == only:
            p = sub.add_parser(name, help=help, description=help)
            _common(p)
            build(p)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in argv, skipping the global options and their values."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--workspace", "-w", "--domain", "-d", "--layout", "--theme"):
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _option_values(argv: list[str]) -> set[str]:
    """The values given to the top-level options (so `--layout wall` is not a command)."""
    out = set()
    for i, a in enumerate(argv[:-1]):
        if a in ("--workspace", "-w", "--domain", "-d", "--layout", "--theme"):
            out.add(argv[i + 1])
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_in(argv)).parse_args(argv)
    if args.version:
        from comm_node_tui.claude_code import version_line

        print(version_line())
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        if args.command is None and not argv:
            handler = "tui_cmd:control_room"  # `comm-node` alone opens the control room
        elif args.command is None and all(
            a.startswith("-") or a in _option_values(argv) for a in argv
        ):
            handler = "tui_cmd:control_room"
        else:
            build_parser().print_help()
            return 0
    module_name, func_name = handler.split(":")
    return run_handler(f"comm_node_tui.commands.{module_name}", func_name, args)
