"""`comm-node graph`: domains as nodes; the dependencies the rules allow (dashed) and the
imports the check found (solid, with counts; red when any breaks a rule)."""

from __future__ import annotations

from comm_node_tui.boundaries.check import Report
from comm_node_tui.workspace.model import Workspace


def allowed_edges(ws: Workspace) -> set[tuple[str, str]]:
    """Declared dependencies: domains named by `allowed_imports` (NAME or NAME:GLOB) and
    the peers a domain takes artifacts from (`imports`)."""
    out: set[tuple[str, str]] = set()
    for d in ws.domains.values():
        for entry in d.allowed_imports:
            name = entry.partition(":")[0]
            if name in ws.domains and name != d.name:
                out.add((d.name, name))
        for peer in d.imports:
            out.add((d.name, peer))
    return out


def edges(ws: Workspace, report: Report) -> list[dict]:
    allowed = allowed_edges(ws)
    found = report.edges
    out = []
    for a, b in sorted(allowed | set(found)):
        info = found.get((a, b), {"count": 0, "violations": 0})
        out.append(
            {
                "from": a,
                "to": b,
                "allowed": (a, b) in allowed,
                "imports": info["count"],
                "violations": info["violations"],
            }
        )
    return out


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(ws: Workspace, report: Report) -> str:
    lines = [f"digraph {_q(ws.project)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for d in ws.domains.values():
        lines.append(f"  {_q(d.name)};")
    for e in edges(ws, report):
        a, b = _q(e["from"]), _q(e["to"])
        if e["imports"] == 0:
            lines.append(f'  {a} -> {b} [style=dashed, label="allowed"];')
        elif e["violations"]:
            label = f"{e['imports']} imports, {e['violations']} violations"
            lines.append(f'  {a} -> {b} [color=red, fontcolor=red, label="{label}"];')
        else:
            style = "" if e["allowed"] else ", color=gray40"
            lines.append(f'  {a} -> {b} [label="{e["imports"]} imports"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mid(name: str) -> str:
    return "d_" + name.replace("-", "_")


def to_mermaid(ws: Workspace, report: Report) -> str:
    lines = ["graph LR"]
    for d in ws.domains.values():
        lines.append(f"  {_mid(d.name)}[{d.name}]")
    red: list[int] = []
    for i, e in enumerate(edges(ws, report)):
        a, b = _mid(e["from"]), _mid(e["to"])
        if e["imports"] == 0:
            lines.append(f"  {a} -.->|allowed| {b}")
        elif e["violations"]:
            lines.append(f"  {a} -->|{e['imports']} imports, {e['violations']} violations| {b}")
            red.append(i)
        else:
            lines.append(f"  {a} -->|{e['imports']} imports| {b}")
    if red:
        lines.append(f"  linkStyle {','.join(map(str, red))} stroke:red,color:red")
    return "\n".join(lines) + "\n"
