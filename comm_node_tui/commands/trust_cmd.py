"""`comm-node trust [DOMAIN...]`: record Claude Code's folder trust for domain folders, only
with the operator's explicit consent (a question, or --yes)."""

from __future__ import annotations

import sys

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import CommNodeError


def trust(args) -> int:
    from comm_node_tui.adapters.claude_trust import config_file, record_trust, untrusted

    ws = workspace(args)
    names = args.domains or sorted(ws.domains)
    folders = {ws.domain(n).path: n for n in names}
    path = args.file or config_file()
    todo = untrusted(list(folders), path)
    if not todo:
        print_json({"file": path, "trusted": []}) if args.json else print(
            f"every folder is already trusted in {path}"
        )
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommNodeError(
                f"{len(todo)} folder(s) to trust in {path}: pass --yes to record it "
                "(no terminal to ask)"
            )
        print(f"Claude Code will run commands and edit files in these folders ({path}):")
        for folder in todo:
            print(f"  {folders[folder]:<14} {folder}")
        if input("trust them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing recorded")
            return 1
    # A Claude Code waiting in the trust dialog keeps its own copy of that file and writes it
    # back when it exits (seen: the trust recorded beside it was lost on restart). So those
    # agents are stopped first, the trust recorded, and then they start again.
    waiting = _stop_agents_in_dialog(ws, [folders[f] for f in todo])
    out = record_trust(todo, path)
    if waiting:
        from comm_node_tui.panes.manager import AgentPanes

        AgentPanes(ws).up(waiting)
        out["restarted"] = waiting
    if args.json:
        print_json(out)
    else:
        print(f"trusted {len(out['trusted'])} folder(s) in {path}")
        if out["backup"]:
            print(f"backup: {out['backup']}")
        if waiting:
            print(f"restarted (they were waiting in the trust dialog): {', '.join(waiting)}")
    return 0


def _stop_agents_in_dialog(ws, names: list[str]) -> list[str]:
    """Stop the agents of `names` whose screen shows the trust dialog; their names."""
    from comm_node_tui.adapters.claude_screen import read_screen
    from comm_node_tui.adapters.tmux import TmuxError
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.panes.processes import kill_tree

    try:
        ap = AgentPanes(ws)
        if not ap.tmux.has_session():
            return []
        panes = ap.tmux.panes()
    except (TmuxError, CommNodeError):
        return []  # no tmux: no agent running here, nothing to stop
    stopped = []
    for name in names:
        pane = panes.get(name)
        if pane is None or pane.dead or not pane.pid:
            continue
        if read_screen(ap.tmux.capture(pane.id)).dialog == "trust":
            kill_tree(pane.pid)
            stopped.append(name)
    return stopped
