"""comm-node model: the scripted model, a local stand-in for the Anthropic API (docs/model.md).

`serve` runs it until Ctrl-C or SIGTERM and prints what to export so that real Claude Code
talks to it; `check` validates a script.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time


def _describe(script, path: str | None) -> str:
    rules = len(script.rules)
    what = f"{path}: {rules} rule{'s' if rules != 1 else ''}" if path else "no script"
    directives = "on" if script.directives else "off"
    return f"{what}; built-in CN_* directives {directives}"


def check(args) -> int:
    from comm_node_tui.model.script import load_script

    script = load_script(args.script)
    print(f"ok: {_describe(script, args.script)}")
    return 0


def _request_line(entry) -> str:
    """One line per answered request, for a person watching a rehearsal."""
    stamp = time.strftime("%H:%M:%S", time.localtime(entry.time))
    who = "sub-agent " if entry.subagent else ""
    said = entry.tool_result if entry.kind == "tool_result" else entry.prompt
    said = (said or "").replace("\n", " ")
    if len(said) > 60:
        said = said[:59] + "…"
    if entry.error:
        outcome = entry.error
    else:
        calls = f" calls {','.join(entry.tool_calls)}" if entry.tool_calls else ""
        u = entry.usage or {}
        outcome = (
            f"{entry.stop_reason}{calls} (in {u.get('input_tokens', 0)}, out "
            f"{u.get('output_tokens', 0)})"
            if entry.usage
            else "answered"
        )
    rule = f" [{entry.rule}]" if entry.rule else ""
    return f"{stamp} {entry.status} {who}{entry.kind}{rule} {said!r} -> {outcome}"


def _wrapper_text(env: dict[str, str], claude: str) -> str:
    lines = [
        "#!/bin/sh",
        "# Written by `comm-node model serve`: runs Claude Code against the scripted model.",
        "# Variables that would reach a real account or the real home are dropped first.",
        "for name in $(env | grep -E -o '^(ANTHROPIC_|CLAUDE|AWS_BEARER_TOKEN_BEDROCK"
        '|XDG_(CONFIG|DATA|CACHE|STATE)_)[A-Za-z0-9_]*=\' | tr -d =); do unset "$name"; done',
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(f'exec {shlex.quote(claude)} "$@"')
    return "\n".join(lines) + "\n"


def serve(args) -> int:
    from comm_node_tui.errors import UsageError
    from comm_node_tui.model.claude_home import DUMMY_API_KEY, OFFLINE_ENV, prepare_claude_home
    from comm_node_tui.model.server import ScriptedModel
    from comm_node_tui.protocol.fileio import atomic_write

    if (args.trust or args.wrapper) and not args.home:
        raise UsageError("--trust and --wrapper need --home DIR (a private HOME for claude)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port number")
    printer = None if args.quiet else (lambda e: print(_request_line(e), flush=True))
    model = ScriptedModel(args.script, log_path=args.log, port=args.port, on_request=printer)
    url = model.start()
    try:
        if args.home:
            env = prepare_claude_home(args.home, url, trust=args.trust).env
        else:
            env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": DUMMY_API_KEY, **OFFLINE_ENV}
        print(f"scripted model on {url} ({_describe(model.script, args.script)})")
        print("run claude with:")
        for key, value in env.items():
            print(f"  export {key}={shlex.quote(value)}")
        if not args.home:
            print("  (without --home, claude uses your own ~/.claude and asks about the key)")
        if args.wrapper:
            atomic_write(args.wrapper, _wrapper_text(env, args.claude), mode=0o700)
            print(f"or run {os.path.abspath(args.wrapper)} (for [agents] command)")
        if args.log:
            print(f"request log: {os.path.abspath(args.log)}")
        print("Ctrl-C stops.", flush=True)
        done = threading.Event()
        # Both end it cleanly; SIGINT explicitly, since a shell's background job inherits it
        # ignored.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
    finally:
        model.stop()
    print("scripted model stopped", file=sys.stderr)
    return 0
