"""comm-node demo: simulated agents in real tmux, no API key needed."""

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
    root = create(args.dir, args.speed, args.seed, args.stalls, args.crashes)
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


def _print_summary(s: dict) -> None:
    t = s["tokens"]
    lines = [
        f"tasks done        {s['tasks_done']}/{s['tasks_total']}",
        f"messages routed   {s['messages_routed']} (bounced {s['messages_bounced']})",
        f"locks             {s['locks_granted']} granted, {s['locks_refused']} refused",
        f"stalls detected   {s['stalls_detected']}, recovered {s['recoveries']}, "
        f"agents restarted {s['agents_restarted']}",
        f"tokens            {t['total']:,} (input {t['input']:,}, output {t['output']:,}, "
        f"cache write {t['cache_write']:,}, cache read {t['cache_read']:,})",
        f"time              {s['seconds']} s",
        "result            " + ("OK: the plan is done" if s["ok"] else "NOT DONE"),
    ]
    print("\n".join(lines))
