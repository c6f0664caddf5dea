"""hook (the hot path: delegates at once) and hooks install / uninstall."""

from __future__ import annotations

import sys


def hook(args) -> int:
    from comm_node_tui.hooks.handler import main

    return main(args)


def _domains(args):
    from comm_node_tui.commands.context import workspace, workspace_and_domain

    if args.all:
        ws = workspace(args)
        return ws, list(ws.domains.values())
    ws, dom = workspace_and_domain(args)
    return ws, [dom]


def install(args) -> int:
    if args.git:
        from comm_node_tui.commands.boundary_cmd import git_hooks

        return git_hooks(args, install=True)
    import shlex

    from comm_node_tui.adapters.agent_cli import agent_cli_for
    from comm_node_tui.commands.context import print_json

    ws, doms = _domains(args)
    cli = agent_cli_for(ws)
    out = [cli.install_hooks(d) for d in doms]
    # The sandbox too (issue 23): an agent started by hand from these settings is walled
    # as one `comm-node up` starts; with sandbox = false this takes out only what
    # comm-node wrote there before, and reads nothing when it never wrote any.
    boxes = [cli.write_sandbox(ws, d) for d in doms]
    why = cli.sandbox_unavailable() if any(b["enabled"] for b in boxes) else None
    for r, box in zip(out, boxes, strict=True):
        r["sandbox"] = {**box, "unavailable": why if box["enabled"] else None}
    if args.json:
        print_json(out)
        return 0
    for r in out:
        print(
            f"{r['domain']}: {r['added']} hooks added, {r['kept']} of yours kept "
            f"({r['path']})" + (f"; backup {r['backup']}" if r["backup"] else "")
        )
        box = r["sandbox"]
        if box["changed"] or box["enabled"]:
            state = "on" if box["enabled"] else "off"
            print(f"{r['domain']}: sandbox {state} ({box['path']})")
        notes = [box["prompts"]] if box["enabled"] and box["prompts"] else []
        if box.get("launch_args"):
            # `up` passes it; a claude started by hand in the shared folder must be told
            notes.append(
                "its walls from the domains sharing its folder need "
                f"`claude {shlex.join(box['launch_args'])}` (`comm-node up` passes it)"
            )
        if box.get("walled_by"):
            notes.append(
                "sandbox = false, but it runs walled: it shares its folder's settings with "
                f"{', '.join(box['walled_by'])} (sandbox = true)"
            )
        for line in notes + box["partial"]:
            print(f"{r['domain']}: sandbox: {line}", file=sys.stderr)
        if box["unavailable"]:
            print(
                f"{r['domain']}: sandbox = true, but {box['unavailable']}: Claude Code will "
                "refuse to start there",
                file=sys.stderr,
            )
    return 0


def uninstall(args) -> int:
    if args.git:
        from comm_node_tui.commands.boundary_cmd import git_hooks

        return git_hooks(args, install=False)
    from comm_node_tui.adapters.agent_cli import agent_cli_for
    from comm_node_tui.commands.context import print_json

    ws, doms = _domains(args)
    cli = agent_cli_for(ws)
    leaving = tuple(d.name for d in doms)
    out = []
    for d in doms:
        # the sandbox comm-node merged in goes too, by its record (never the user's keys);
        # in a folder shared with domains still installed, its settings file (hooks, rules,
        # sandbox) stays as their agents need it: only the domain's own file goes
        box = cli.remove_sandbox(ws, d, tuple(n for n in leaving if n != d.name))
        if box["kept_for"]:
            r = {"domain": d.name, "path": box["path"], "removed": 0, "backup": None}
        else:
            r = cli.uninstall_hooks(d)
        out.append({**r, "sandbox": box})
    if args.json:
        print_json(out)
    else:
        for r in out:
            kept = r["sandbox"]["kept_for"]
            if kept:
                print(
                    f"{r['domain']}: comm-node's hooks and sandbox kept in {r['path']} for "
                    f"{', '.join(kept)} (sharing the folder)"
                )
            else:
                print(f"{r['domain']}: {r['removed']} comm-node hooks removed ({r['path']})")
            box = r["sandbox"]
            if box["removed"] and kept:
                print(f"{r['domain']}: its own settings file taken out ({box['own']})")
            elif box["removed"]:
                print(f"{r['domain']}: comm-node's sandbox taken out ({box['path']})")
    return 0
