"""registry.json: what an agent knows of its world (its role, scope, peers and what they
export). Written by the engine at start and by `comm-node init`; stable content, so
re-running init changes nothing when the configuration did not change."""

from __future__ import annotations

from comm_node_tui.workspace.model import Domain, Workspace


def registry_for(ws: Workspace, dom: Domain) -> dict:
    return {
        **registry_head(ws, dom),
        "peers": [peer_entry(p) for p in ws.domains.values() if p.name != dom.name],
        "operator": "operator",
    }


def registry_head(ws: Workspace, dom: Domain) -> dict:
    """The fields before `peers` (engine/domains.py joins the rest as text, in this order)."""
    return {
        "project": ws.project,
        "domain": dom.name,
        "role": dom.role,
        "scope": dom.scope,
        "exports": dom.exports,
        "imports": dom.imports,
        "allowed_imports": dom.allowed_imports,
        "forbidden_imports": dom.forbidden_imports,
    }


def peer_entry(p: Domain) -> dict:
    return {"name": p.name, "role": p.role, "exports": p.exports, "path": p.path}
