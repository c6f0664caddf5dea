"""`comm-node trust [DOMAIN...]`: record the agent CLI's folder trust (Claude Code's) for
domain folders, only with the operator's explicit consent (a question, or --yes)."""

from __future__ import annotations

import sys

from comm_node_tui.commands.context import print_json, workspace
from comm_node_tui.errors import CommNodeError


def trust(args) -> int:
    from comm_node_tui.adapters.agent_cli import agent_cli_for

    ws = workspace(args)
    cli = agent_cli_for(ws)
    records = cli.trust
    if records is None:
        raise CommNodeError(f"{cli.label} asks no folder trust: nothing to record")
    names = args.domains or sorted(ws.domains)
    folders = {ws.domain(n).path: n for n in names}
    for folder in records.with_git_roots(list(folders)):
        if folder not in folders:
            owners = [n for f, n in folders.items() if records.git_root(f) == folder]
            folders[folder] = f"(git repository of {', '.join(owners)})"
    path = args.file or records.config_file()
    todo = records.untrusted(list(folders), path)
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
        print(f"{cli.label} will run commands and edit files in these folders ({path}):")
        for folder in todo:
            print(f"  {folders[folder]:<14} {folder}")
        if input("trust them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing recorded")
            return 1
    # A Claude Code waiting in the trust dialog keeps its own copy of that file and writes it
    # back when it exits (seen: the trust recorded beside it was lost on restart). So those
    # agents are stopped first, the trust recorded, and then they start again.
    waiting = _stop_agents_in_dialog(ws, names)
    out = records.record_trust(todo, path)
    if waiting:
        out["restarted"] = waiting
        # Another Claude Code running on the same config can write its own, older copy of
        # the file back (seen in tests); agents that come back to the dialog get the trust
        # again, a few times, before this gives up and says so.
        for _attempt in range(3):
            from comm_node_tui.panes.manager import AgentPanes

            AgentPanes(ws).up(waiting)
            waiting = _back_in_dialog(ws, waiting)
            if not waiting:
                break
            _stop_agents_in_dialog(ws, waiting)
            records.record_trust(list(folders), path)
        if waiting:
            raise CommNodeError(
                f"{', '.join(waiting)} still ask to trust their folder: another {cli.label} "
                f"keeps rewriting {path}; stop the agents (`comm-node down`) and run this again"
            )
    if args.json:
        print_json(out)
    else:
        print(f"trusted {len(out['trusted'])} folder(s) in {path}")
        if out["backup"]:
            print(f"backup: {out['backup']}")
        if out.get("restarted"):
            names_back = ", ".join(out["restarted"])
            print(f"restarted (they were waiting in the trust dialog): {names_back}")
    return 0


def _back_in_dialog(ws, names: list[str], timeout_s: float = 20.0) -> list[str]:
    """Of the agents just started, those whose screen shows the trust dialog again (each
    is watched until it shows its prompt or that dialog)."""
    import time

    from comm_node_tui.panes.manager import AgentPanes

    ap = AgentPanes(ws)
    pending, again = set(names), []
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            screen = ap.cli.read_screen(ap.peek(name))
            if screen.dialog == "trust":
                again.append(name)
                pending.discard(name)
            elif screen.has_prompt:
                pending.discard(name)
        time.sleep(0.2)
    return again


def _stop_agents_in_dialog(ws, names: list[str]) -> list[str]:
    """Stop the agents of `names` whose screen shows the trust dialog; their names."""
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
        if ap.cli.read_screen(ap.tmux.capture(pane.id)).dialog == "trust":
            kill_tree(pane.pid)
            stopped.append(name)
    return stopped
