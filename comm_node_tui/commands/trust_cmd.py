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
    out = record_trust(todo, path)
    if args.json:
        print_json(out)
    else:
        print(f"trusted {len(out['trusted'])} folder(s) in {path}")
        if out["backup"]:
            print(f"backup: {out['backup']}")
    return 0
