"""The event catalogue and the code agree: every type the code writes is in it."""

from __future__ import annotations

import ast
from pathlib import Path

from comm_node_tui.protocol.event_types import ALERTS, EventType

PACKAGE = Path(__file__).resolve().parent.parent / "comm_node_tui"
KNOWN = {str(t) for t in EventType}


def _strings(node: ast.AST) -> set[str]:
    """Every string an event type expression can take (constants, both arms of `a if c
    else b`, f-strings expanded over the values they are known to take)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    if isinstance(node, ast.JoinedStr):  # f"agent.{verb}": checked against the prefix
        prefix = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return {prefix + "*"}
    return set()


def written_types() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        if "model" in path.relative_to(PACKAGE).parts:
            continue  # the scripted model's SSE "event" names are another vocabulary
        tree = ast.parse(path.read_text())
        assigned: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, set()).update(_strings(node.value))
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for t, v in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(t, ast.Name):
                                assigned.setdefault(t.id, set()).update(_strings(v))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event":
                arg = node.args[0]
                names = (
                    assigned.get(arg.id, set()) if isinstance(arg, ast.Name) else _strings(arg)
                )
                for name in names:
                    out[name] = f"{path.relative_to(PACKAGE)}:{node.lineno}"
    return out


def test_every_type_the_code_writes_is_in_the_catalogue():
    written = written_types()
    assert len(written) > 60  # the scan sees the code (a broken scan would pass vacuously)
    unknown = {
        name: where
        for name, where in written.items()
        if (name[:-1] if name.endswith("*") else name) not in KNOWN
        and not (name.endswith("*") and any(k.startswith(name[:-1]) for k in KNOWN))
    }
    assert not unknown, f"event types missing from protocol/event_types.py: {unknown}"


def test_alerts_name_catalogued_types_with_room_severities():
    assert set(ALERTS) <= set(EventType)
    assert set(ALERTS.values()) <= {"warning", "error"}
