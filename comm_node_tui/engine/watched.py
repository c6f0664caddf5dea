"""Which files the engine watches, watching them, and what a batch of changes asks for."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from comm_node_tui.coordination.coordinator import OVERLAY_FILE
from comm_node_tui.workspace.model import Workspace

# (change, path) pairs from watchfiles (a set[tuple[Change, str]]), only read: the read-only
# Set type takes it where set[tuple[object, str]] would not (a set is invariant in its items).
Changes = AbstractSet[tuple[object, str]]


def watch_paths(ws: Workspace) -> list[str]:
    """The workspace root (comm-node.toml, a native tasks file), the engine's own state
    directory (the task overlay: a claim, close or assign by any CLI) and each domain's
    outbox, inbox, state and artifacts directories that exist (the watcher is re-armed when
    that list changes). The inbox: mail that reaches an agent without the router (the
    operator's messages, a task assigned from the room, an answer from the Needs-you list)
    wakes it too."""
    paths = [ws.root]
    if os.path.isdir(ws.paths.state):
        paths.append(ws.paths.state)
    for dom in ws.domains.values():
        for p in (dom.paths.outbox, dom.paths.inbox, dom.paths.dir, dom.paths.artifacts):
            if os.path.isdir(p):
                paths.append(p)
    return list(dict.fromkeys(paths))


async def watch(
    ws: Callable[[], Workspace],
    stop: asyncio.Event,
    handle: Callable[[Changes], None],
    *,
    debounce_ms: int,
    step_ms: int,
) -> None:
    """Hand every batch of changes to `handle` until `stop`. Re-armed when the directories
    to watch change (a domain appeared, a directory was created); `ws` is asked each time,
    as a config reload replaces the Workspace."""
    from comm_node_tui.engine import inotify

    while not stop.is_set():
        paths = watch_paths(ws())
        batches: AsyncGenerator[Changes, None]
        if inotify.available():  # no thread waking every step to ask whether to stop
            batches = inotify.awatch(
                paths, stop, debounce_ms=debounce_ms, step_ms=step_ms, wanted=state_filter(ws())
            )
        else:
            from watchfiles import awatch

            batches = awatch(
                *paths,
                debounce=debounce_ms,
                step=step_ms,
                stop_event=stop,
                recursive=False,
                watch_filter=state_filter(ws()),
                ignore_permission_denied=True,
            )
        # closed on leaving (a break does not close an async generator: its descriptor and
        # reader stayed until the collector found it)
        async with contextlib.aclosing(batches) as each:
            async for changes in each:
                handle(changes)
                if set(watch_paths(ws())) != set(paths):
                    break


def state_filter(ws: Workspace) -> Callable[[object, str], bool]:
    """What the watcher keeps of the engine's state directory: the task overlay (and a
    domain's status.json, for a domain whose folder is the workspace root). The rest there
    is the engine's own writing (events.jsonl on every event, the journal, receipts): a
    batch for each would wake the engine to read what it has just written."""
    state = ws.paths.state
    keep = {os.path.join(state, OVERLAY_FILE)} | {d.paths.status for d in ws.domains.values()}

    def wanted(_change: object, path: str) -> bool:
        return os.path.dirname(path) != state or path in keep

    return wanted


@dataclass
class Batch:
    outboxes: list[str] = field(default_factory=list)  # domains with new outgoing mail
    statuses: list[str] = field(default_factory=list)  # domains whose status.json changed
    inboxes: list[str] = field(default_factory=list)  # domains with new mail in their inbox
    config: bool = False  # comm-node.toml changed
    artifacts: bool = False  # some domain published (or removed) an artifact
    tasks: bool = False  # the task overlay or the native tasks file changed


def sort_changes(ws: Workspace, changes: Changes) -> Batch:
    """One batch from the watcher, sorted by what it asks the engine to do."""
    by_artifacts = {d.paths.artifacts for d in ws.domains.values()}
    by_outbox = {d.paths.outbox: d.name for d in ws.domains.values()}
    by_inbox = {d.paths.inbox: d.name for d in ws.domains.values()}
    by_status = {d.paths.status: d.name for d in ws.domains.values()}
    tasks_files = {os.path.join(ws.paths.state, OVERLAY_FILE)}
    if ws.settings.tasks.file():
        tasks_files.add(os.path.join(ws.root, ws.settings.tasks.file()))
    outboxes: set[str] = set()
    inboxes: set[str] = set()
    statuses: set[str] = set()
    batch = Batch()
    for _change, path in changes:
        parent = os.path.dirname(path)
        if parent in by_outbox:
            outboxes.add(by_outbox[parent])
        elif parent in by_inbox:
            name = os.path.basename(path)
            # a message lands by rename (atomic_write): its temporary name starts with "."
            if name.endswith(".md") and not name.startswith("."):
                inboxes.add(by_inbox[parent])
        elif path in by_status:
            statuses.add(by_status[path])
        elif path == ws.paths.config:
            batch.config = True
        elif path in tasks_files:
            batch.tasks = True
        elif parent in by_artifacts:
            batch.artifacts = True
    batch.outboxes, batch.statuses = sorted(outboxes), sorted(statuses)
    batch.inboxes = sorted(inboxes)
    return batch
