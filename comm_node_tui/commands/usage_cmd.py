"""comm-node usage: real token use and cost per domain from the agent CLI's transcripts."""

from __future__ import annotations

import json
import os

from comm_node_tui.commands.context import print_json, workspace


def _transcripts_from_status(ws) -> dict[str, str]:
    """{transcript: domain} for the transcripts the domains' hooks reported."""
    paths = {}
    for dom in ws.domains.values():
        try:
            with open(dom.paths.status, encoding="utf-8") as fh:
                p = json.load(fh).get("transcript_path")
            if isinstance(p, str) and os.path.isfile(p):
                paths[p] = dom.name
        except (RecursionError, OSError, ValueError, AttributeError):
            continue
    return paths


def usage(args) -> int:
    from comm_node_tui.adapters.agent_cli import agent_cli_for

    ws = workspace(args)
    tracker = agent_cli_for(ws).usage(ws)
    tracker.poll(_transcripts_from_status(ws))
    summary = tracker.summary()
    if args.json:
        print_json(summary)
        return 0
    print(
        f"{'domain':<14} {'input':>10} {'output':>10} {'cache wr':>10} {'cache rd':>12} "
        f"{'total':>12} {'USD':>9} {'tok/min':>9}"
    )
    for name, d in summary["domains"].items():
        print(
            f"{name:<14} {d['input']:>10} {d['output']:>10} {d['cache_write']:>10} "
            f"{d['cache_read']:>12} {d['total']:>12} {d['cost_usd']:>9.2f} "
            f"{d['tokens_per_min']:>9.0f}"
        )
    if summary["unpriced_models"]:
        print(
            f"no price for: {', '.join(summary['unpriced_models'])} (add [prices] to "
            "comm-node.toml)"
        )
    return 0
