"""config check / show."""

from __future__ import annotations

import os
import sys

from comm_node_tui.commands.context import print_json
from comm_node_tui.workspace.discovery import find_root, load_workspace


def check(args) -> int:
    """Every problem at once: each TOML syntax error, every field and cross-domain error of
    what parsed, every domain path missing on disk (not one layer per run)."""
    root = find_root(getattr(args, "workspace", None))
    path = os.path.join(root, "comm-node.toml")
    # Always the file itself, never the config cache: the cache lives in .comm-node/, where
    # a sandboxed agent's long-running command can replace it (the read-only mount of a file
    # the host renames over is gone), and a file edited keeping its size and mtime still
    # matches its stamp; this command is how the operator learns what the file says.
    from comm_node_tui.workspace.configfile import check_config

    config, problems = check_config(path, root)
    count = len(config.domains) if config is not None else 0
    if args.json:
        print_json({"ok": not problems, "file": path, "problems": problems})
    elif problems:
        for line in problems:
            print(line, file=sys.stderr)
    else:
        print(f"{path}: ok ({count} domains)")
    return 1 if problems else 0


def show(args) -> int:
    ws = load_workspace(find_root(getattr(args, "workspace", None)))
    from comm_node_tui.workspace.config import config_toml, load_config, masked

    if args.json:
        print_json(
            {
                "root": ws.root,
                "config": masked(ws.config),  # the [notify] secrets hidden
                "domains": [d.to_json() for d in ws.domains.values()],
            }
        )
        return 0
    # The file as validated (defaults filled in), not the workspace's runtime dict: that one
    # carries derived keys (scope_regex) the file's schema refuses. Secrets are hidden.
    config = load_config(os.path.join(ws.root, "comm-node.toml"))
    sys.stdout.write(config_toml(masked(config.model_dump(mode="json", exclude_none=True))))
    return 0
