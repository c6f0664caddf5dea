"""The integration coordinator: an optional domain with `role = "integration"` whose agent
the engine starts once every other domain's tasks are done (engine/integration_monitor.py).

What it is asked to do is a contract, written here as plain data: a native task (title,
done_when, verify: its `task done` gate runs `[integration] tests` and checks that the
report exists) and the same steps as a message from comm-node: check that every artifact
the domains promised is there, run the integration tests, run `comm-node check`, write the
report. Whether it may start is `ready()`, a pure function of the tasks.

Restart-safe: the engine keeps what it did in `.comm-node/integration.json` (MARKER); a
coordinator that was started is never started again by the engine (the operator can).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from comm_node_tui.coordination.tasks import Task
    from comm_node_tui.workspace.model import Domain, Workspace

ROLE = "integration"
MARKER = "integration.json"  # in the workspace's .comm-node/ (the coordination store)
TASK_ID = "integration"


def is_coordinator(dom: Domain) -> bool:
    return dom.role.strip().lower() == ROLE


def coordinator_of(ws: Workspace) -> Domain | None:
    """The workspace's integration domain (the first one, by name), if any."""
    found = sorted((d for d in ws.domains.values() if is_coordinator(d)), key=lambda d: d.name)
    return found[0] if found else None


def held_back(ws: Workspace) -> set[str]:
    """The integration coordinator while the engine has not started it yet: `comm-node up`
    with no names and the kickoff leave it to the engine, which starts it once every other
    domain's tasks are done (named explicitly, it starts like any agent)."""
    if not ws.settings.integration.coordinator:
        return set()
    dom = coordinator_of(ws)
    if dom is None:
        return set()
    from comm_node_tui.coordination.store import CoordStore

    try:
        marker = CoordStore(ws.paths.state).read(MARKER, {})
    except (OSError, ValueError):
        marker = {}
    if not isinstance(marker, dict):
        return {dom.name}
    started = marker.get("started_at") is not None and marker.get("domain") == dom.name
    return set() if started else {dom.name}


def report_path(ws: Workspace, dom: Domain) -> str:
    """Where the coordinator writes its report: inside its own folder ([integration] report)."""
    return os.path.join(dom.path, ws.settings.integration.report)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    why: str  # one line: what it waits for, or that it is done


def ready(coordinator: str, tasks: Mapping[str, Task]) -> Readiness:
    """Whether every task of the other domains is done (and there is at least one)."""
    from comm_node_tui.coordination.tasks import DONE

    theirs = [t for t in tasks.values() if t.domain != coordinator and t.id != TASK_ID]
    if not theirs:
        return Readiness(False, "no tasks of the other domains yet")
    open_ = [t for t in theirs if t.status not in DONE]
    if open_:
        return Readiness(False, f"{len(open_)} of {len(theirs)} tasks not done")
    return Readiness(True, f"all {len(theirs)} tasks of the other domains are done")


def promised(ws: Workspace, tasks: Mapping[str, Task], manifests: Mapping[str, dict]) -> list[str]:
    """Every artifact promised, one line each: a domain's exports, a task's contract
    artifacts, and whether the domain published it (its manifest)."""
    lines = []
    for d in sorted(ws.domains.values(), key=lambda d: d.name):
        if is_coordinator(d):
            continue
        published = manifests.get(d.name) or {}
        for pattern in d.exports:
            lines.append(f"{d.name} exports {pattern} (files under {d.path})")
        for name in sorted(published):
            lines.append(f"{d.name} published artifact {name} ({d.paths.artifacts})")
    for t in sorted(tasks.values(), key=lambda t: t.id):
        for name in t.contract.artifacts:
            lines.append(f"task {t.id} ({t.domain or 'no domain'}) promised artifact {name}")
    return lines


def contract_fields(ws: Workspace, dom: Domain) -> dict:
    """The coordinator's native task, as `task add` takes it (coordination/task_edit.py)."""
    report = ws.settings.integration.report
    tests = list(integration_tests(ws))
    return {
        "title": "Integrate the domains' work and write the integration report",
        "domain": dom.name,
        "priority": 0,
        "done_when": [
            "every artifact the domains promised exists (see the message from comm-node)",
            "the integration tests were run: " + ("; ".join(tests) or "none configured"),
            "`comm-node check` was run and its result is in the report",
            f"the report is written to {report} (in this domain's folder)",
        ],
        "verify": [*tests, f"test -s {shlex.quote(report)}"],
    }


def integration_tests(ws: Workspace) -> tuple[str, ...]:
    """`[integration] tests`: the commands run on the integrated work (the merge queue runs
    the same ones on every merged result)."""
    return tuple(t for t in ws.settings.integration.tests if t.strip())


def contract_message(ws: Workspace, dom: Domain, lines: list[str], task_id: str | None) -> str:
    """The contract as a message to the coordinator's agent."""
    tests = integration_tests(ws)
    report = ws.settings.integration.report
    out = [
        "Every other domain says its work is done. You are the integration coordinator:",
        "",
        "1. Check that every promised artifact exists:",
        *([f"   - {ln}" for ln in lines] or ["   - (no domain promised any)"]),
        "2. Run the integration tests, from this folder:",
        *([f"   - {t}" for t in tests] or ["   - none are configured ([integration] tests)"]),
        "3. Run `comm-node check` (the boundary check) and keep its output.",
        f"4. Write the report to {report} (in this folder): what exists, what is missing,",
        "   each test's result, the check's result, and what the operator should do next.",
        "",
        (
            f"Your task is {task_id}: `comm-node task claim {task_id}`, and "
            f"`comm-node task done {task_id}` when the report is written."
            if task_id
            else "Tell the operator when the report is written (`comm-node send --to operator`)."
        ),
    ]
    return "\n".join(out) + "\n"


def status_line(ws: Workspace) -> str | None:
    """What `comm-node status` says about the coordinator: None before the engine started
    it; then where its report is, or that it is not written yet."""
    from comm_node_tui.coordination.store import CoordStore

    try:
        marker = CoordStore(ws.paths.state).read(MARKER, {})
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("report"), str):
        return None
    name, path = marker.get("domain", "?"), marker["report"]
    if os.path.isfile(path):
        return f"integration report ({name}): {path}"
    return f"integration coordinator {name} started; its report is not written yet ({path})"
