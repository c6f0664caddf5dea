"""`comm-node diff D`: the files a domain changed since its base, and with --patch the diff.

Plain text out (never Rich): the file names and the diff lines are an agent's text, already
stripped of control characters by integration/diff.py.
"""

from __future__ import annotations

import sys


def _target(args, ws):
    from comm_node_tui.workspace.discovery import resolve_domain

    return resolve_domain(ws, getattr(args, "domain_name", None) or getattr(args, "domain", None))


def counts(change) -> str:
    """+12 -3, or "binary" / "new" for what git counts no lines of."""
    if change.status == "?":
        return "untracked"
    if change.binary:
        return "binary"
    return f"+{change.added} -{change.removed}"


def diff(args) -> int:
    from comm_node_tui.commands.context import print_json, workspace
    from comm_node_tui.integration.diff import changed_files, patch
    from comm_node_tui.integration.gitwork import find_work

    ws = workspace(args)
    dom = _target(args, ws)
    work = find_work(ws, dom)
    if work.mode == "none":
        if args.json:
            print_json({"domain": dom.name, "mode": "none", "files": []})
        else:
            print(f"{dom.name}: {dom.path} is not in git: no diff to show")
        return 0
    files, total = changed_files(work)
    if args.json:
        out: dict = {
            "domain": dom.name,
            "mode": work.mode,
            "branch": work.branch,
            "base": work.base,
            "since": work.since,
            "files": [f.to_json() for f in files],
            "total_files": total,
        }
        if args.patch:
            out["patches"] = {}
            for f in files:
                p = patch(work, f)
                out["patches"][f.path] = {"text": p.text, "note": p.note}
        print_json(out)
        return 0
    print(work.describe() + f": {total} file(s) changed")
    for f in files:
        name = f"{f.old_path} -> {f.path}" if f.old_path else f.path
        print(f"{f.status}  {counts(f):>12}  {name}")
    if total > len(files):
        print(f"... and {total - len(files)} more")
    if args.patch:
        for f in files:
            p = patch(work, f)
            if p.note:
                print(f"--- {f.path}: {p.note}")
            else:
                sys.stdout.write(p.text if p.text.endswith("\n") else p.text + "\n")
    return 0
