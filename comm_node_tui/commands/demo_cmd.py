"""comm-node demo: real Claude Code agents (or simulated ones) in real tmux, offline, no API
key needed."""

from __future__ import annotations

import sys


def demo(args) -> int:
    import shutil

    from comm_node_tui.commands.context import print_json
    from comm_node_tui.demo.run import create, run_headless, run_ui
    from comm_node_tui.errors import CommNodeError

    if shutil.which("tmux") is None:
        raise CommNodeError("the demo runs its agents in tmux, which is not installed")
    if args.speed <= 0:
        raise CommNodeError("--speed must be more than 0")
    claude = _choose_agents(args.agents)
    root = create(args.dir, args.speed, args.seed, args.stalls, args.crashes, claude=claude)
    if not args.json:
        print(f"demo workspace: {root}", file=sys.stderr)
    if args.headless:
        code, summary = run_headless(root, args.speed, args.timeout / args.speed)
        if args.json:
            print_json(summary)
        else:
            _print_summary(summary)
        return code
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CommNodeError("the control room needs a terminal; use --headless")
    run_ui(root, args.speed, args.layout, args.theme)
    print(f"demo stopped; its workspace stays in {root}")
    return 0


def _choose_agents(wanted: str | None) -> str | None:
    """The `claude` executable for real agents, or None for simulated ones. Without a choice:
    real Claude Code when it is there, else the simulated agents and one line saying why."""
    from comm_node_tui.demo.real import find_claude
    from comm_node_tui.errors import CommNodeError

    if wanted == "simulated":
        return None
    claude, why = find_claude()
    if claude is None:
        if wanted == "claude":
            raise CommNodeError(f"--agents claude: {why}")
        print(f"demo: simulated agents, not real Claude Code: {why}", file=sys.stderr)
    return claude


def _print_summary(s: dict) -> None:
    t = s["tokens"]
    lines = [
        "agents            "
        + ("real Claude Code (scripted model)" if s.get("agents") == "claude" else "simulated"),
        f"tasks done        {s['tasks_done']}/{s['tasks_total']}",
        f"messages routed   {s['messages_routed']} (bounced {s['messages_bounced']})",
        f"locks             {s['locks_granted']} granted, {s['locks_refused']} refused",
        f"stalls detected   {s['stalls_detected']}, recovered {s['recoveries']}, "
        # real agents: every restart (the staged one included); simulated: the crashed ones
        f"agents restarted {s.get('restarts', s['agents_restarted'])}",
        f"tokens            {t['total']:,} (input {t['input']:,}, output {t['output']:,}, "
        f"cache write {t['cache_write']:,}, cache read {t['cache_read']:,})",
    ]
    if s.get("agents") == "claude":
        d, m = s["deliveries"], s["model_log"]
        refused = ", ".join(f"{k} {v}" for k, v in sorted(d["refused_by_reason"].items()))
        typed = ", ".join(f"{k} {v}" for k, v in sorted(d["typed_by"].items()))
        diff = {k: v for k, v in s["tokens_difference"].items() if v}
        lines += [
            f"permission asks   {s['permission_prompts']} answered by the operator stand-in",
            f"deliveries        {d['typed']} typed ({typed or 'none'}), "
            f"{d['refused']} refused" + (f" ({refused})" if refused else ""),
            f"model log         {m['total']:,} tokens in {m['responses']} answers "
            f"({m['side_requests']} side requests, which no transcript holds, left out)",
            "tokens vs log     "
            + (
                "equal"
                if s["tokens_equal"]
                else f"differ: comm-node minus the model's log {diff} "
                "(answers not yet written to a transcript when counted)"
            ),
        ]
    lines += [
        f"time              {s['seconds']} s",
        "result            " + ("OK: the plan is done" if s["ok"] else "NOT DONE"),
    ]
    print("\n".join(lines))
