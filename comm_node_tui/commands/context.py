"""Workspace and domain for a command, from --workspace/--domain, the environment, or cwd."""

from __future__ import annotations

import sys

from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.workspace.discovery import find_root, load_workspace, resolve_domain
from comm_node_tui.workspace.model import Domain, Workspace


def workspace(args) -> Workspace:
    return load_workspace(find_root(getattr(args, "workspace", None)))


def workspace_and_domain(args) -> tuple[Workspace, Domain]:
    ws = workspace(args)
    return ws, resolve_domain(ws, getattr(args, "domain", None))


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
