"""What the operator does from the control room, as engine-layer functions (the UI writes no
protocol file itself): a message into an agent's inbox, pause/resume, assigning a task."""

from __future__ import annotations

import os

from comm_node_tui.coordination.coordinator import OVERLAY_FILE, Coordinator
from comm_node_tui.errors import CommNodeError, ConflictError
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write
from comm_node_tui.protocol.messages import estimate_tokens, new_message_id, now_iso, render

PAUSE_FILE = "paused.json"


def message_to_agent(
    coord: Coordinator,
    domain: str,
    text: str,
    *,
    msg_type: str = "operator",
    priority: str = "high",
) -> str:
    """Put a message from the operator straight into an agent's inbox; its id."""
    dom = coord.ws.domain(domain)
    ident = new_message_id()
    meta = {
        "id": ident,
        "from": "operator",
        "to": [domain],
        "type": msg_type,
        "priority": priority,
        "created": now_iso(),
        "tokens": estimate_tokens(text),
    }
    os.makedirs(dom.paths.inbox, mode=0o700, exist_ok=True)
    atomic_write(os.path.join(dom.paths.inbox, f"{ident}.md"), render(meta, text))
    coord.emit(
        Event(
            "operator.message",
            f"operator -> {domain}: {text.splitlines()[0][:80]}"
            if text.strip()
            else f"operator -> {domain}",
            agent=domain,
            data={"id": ident, "chars": len(text)},
        )
    )
    return ident


def is_paused(coord: Coordinator) -> bool:
    return os.path.exists(os.path.join(coord.ws.paths.state, PAUSE_FILE))


def set_paused(coord: Coordinator, paused: bool) -> None:
    path = os.path.join(coord.ws.paths.state, PAUSE_FILE)
    if paused:
        atomic_write(path, f'{{"paused_at": "{now_iso()}"}}\n')
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    coord.emit(
        Event(
            "operator.pause" if paused else "operator.resume",
            "emergency stop: every agent interrupted, no new claims"
            if paused
            else "resumed: claims allowed again",
            level="warn" if paused else "info",
        )
    )


def assign_task(coord: Coordinator, tid: str, domain: str) -> dict:
    """Give a task to an agent (taking it from whoever had it) and tell the agent."""
    dom = coord.ws.domain(domain)
    with coord.store.locked():
        tasks, _ready, _problems = coord.load_tasks()
        t = tasks.get(tid)
        if t is None:
            raise CommNodeError(f"no task '{tid}'")
        if t.status in ("closed", "pinned"):
            raise ConflictError(f"task {tid} is {t.status}")
        previous = t.assignee if t.status == "in_progress" else None
        overlay = coord.overlay()
        coord.set_task(
            overlay,
            tid,
            status="in_progress",
            assignee=dom.name,
            claimed_at=now_iso(),
            assigned_by="operator",
        )
        coord.store.write(OVERLAY_FILE, overlay)
    coord.emit(
        Event(
            "task.assigned",
            f"operator assigned {tid} to {domain}"
            + (f" (was {previous})" if previous and previous != domain else ""),
            agent=domain,
            data={"task": tid, "previous": previous},
        )
    )
    message_to_agent(
        coord,
        domain,
        f"The operator assigned task {tid} to you: {t.title}\n"
        f"`comm-node task show {tid}` for details.",
        msg_type="assignment",
    )
    if previous and previous != domain:
        message_to_agent(
            coord,
            previous,
            f"The operator moved task {tid} to {domain}; stop working on it.",
            msg_type="assignment",
        )
    return {"task": tid, "domain": domain, "previous": previous}
