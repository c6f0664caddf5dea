"""What the operator does from the control room, as engine-layer functions (the UI writes no
protocol file itself): a message into an agent's inbox, pause/resume, assigning a task."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable

from comm_node_tui.coordination.coordinator import OVERLAY_FILE, Coordinator
from comm_node_tui.coordination.pause import (
    NOT_PAUSED,
    Pause,
    legacy_pause_path,
    pause_path,
    read_pause,
)
from comm_node_tui.errors import CommNodeError, ConflictError
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir
from comm_node_tui.protocol.messages import estimate_tokens, new_message_id, now_iso, render


def message_to_agent(
    coord: Coordinator,
    domain: str,
    text: str,
    *,
    msg_type: str = "operator",
    priority: str = "high",
    reply_to: str | None = None,
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
    if reply_to:
        meta["reply_to"] = reply_to
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


def pause_state(coord: Coordinator) -> Pause:
    """What the operator has stopped (coordination/pause.py reads the file)."""
    return read_pause(coord.ws.paths.state)


def is_paused(coord: Coordinator) -> bool:
    """Whether anything is paused (every agent, or one by name)."""
    return pause_state(coord).any


def pause(coord: Coordinator, domains: Iterable[str] | None = None) -> Pause:
    """Stop every agent (`domains` None) or these by name; the pause now in force. While
    paused, the hooks refuse an agent's tools and prompts, the engine types nothing into it
    and it claims no task (docs/protocol.md, "Pause")."""
    names = None if domains is None else [coord.ws.domain(d).name for d in domains]
    with coord.store.locked():
        now = pause_state(coord)
        after = Pause(
            all=now.all or names is None,
            domains=tuple(sorted(set(now.domains) | set(names or ()))),
            paused_at=now_iso(),
        )
        _write_pause(coord, after)
    who = "every agent" if names is None else ", ".join(names)
    coord.emit(
        Event(
            "operator.pause",
            f"paused {who}: tools, prompts, nudges and new claims refused",
            level="warn",
            data={"all": names is None, "domains": names or []},
        )
    )
    return after


def resume(coord: Coordinator, domains: Iterable[str] | None = None) -> Pause:
    """End the pause of everyone (`domains` None: every pause, by name too) or of these; the
    pause still in force. Resuming one agent while every agent is paused is refused: say
    `--all`, then pause the others by name."""
    names = None if domains is None else [coord.ws.domain(d).name for d in domains]
    with coord.store.locked():
        now = pause_state(coord)
        if names is None:
            after = NOT_PAUSED
        elif now.all:
            raise ConflictError(
                "every agent is paused: `comm-node resume --all`, then pause the others by name"
            )
        else:
            left = tuple(d for d in now.domains if d not in names)
            after = Pause(domains=left, paused_at=now.paused_at) if left else NOT_PAUSED
        _write_pause(coord, after)
    who = "every agent" if names is None else ", ".join(names)
    coord.emit(
        Event(
            "operator.resume",
            f"resumed {who}",
            data={"all": names is None, "domains": names or []},
        )
    )
    return after


def _write_pause(coord: Coordinator, p: Pause) -> None:
    state = coord.ws.paths.state
    path = pause_path(state)
    folder = os.path.dirname(path)
    if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
        os.unlink(folder)  # a link or file put there is not ours: never written through
    if p.any:
        ensure_dir(folder)
        atomic_write(path, json.dumps(p.to_json()) + "\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    # an older comm-node's file, moved by this write (read while the new one is missing)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(legacy_pause_path(state))


def set_paused(coord: Coordinator, paused: bool) -> None:
    """Pause every agent, or end every pause."""
    if paused:
        pause(coord)
    else:
        resume(coord)


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
