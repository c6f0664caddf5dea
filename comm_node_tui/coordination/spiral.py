"""Spirals: an agent failing the same tool call again and again, or busy for a long time with
nothing to show for it. Raised as `agent.spiral`; with `[agents] spiral_policy = "pause"` the
domain is paused too (the operator resumes it, `comm-node resume NAME`).

The repeat half runs in the hook after every tool call (PostToolUse / PostToolUseFailure), so
it is the standard library and one small per-domain file, `spiral.json` in the domain's state
folder: the last few calls as (tool, hash of its input, failed), and the time of the agent's
last edit (the engine's no-progress half reads it, engine/spiral.py). "The same call" is the
same tool with the same input; calls in between (a Read of the failing file) do not break
the run, a success of that same call does. One alert per run: the same call must succeed
before it can raise another.

Claude Code runs the hooks of parallel tool calls at the same time, so two hooks can read the
file, each add its call, and the second rename loses the first one's: the read-change-write
is done under the coordination lock (coordination/store.py), as every shared file is.
"""

from __future__ import annotations

import os
import zlib

from comm_node_tui.protocol import jsonfast as json

TYPE_CHECKING = False  # the hook loads the coordinator only when it raises a spiral
if TYPE_CHECKING:
    from comm_node_tui.coordination.coordinator import Coordinator

SPIRAL_FILE = "spiral.json"
MAX_FILE_BYTES = 64 * 1024
EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")
# Other holders (the engine, the agent CLI) keep the lock for milliseconds; a hook that still
# cannot have it after this long skips the record rather than hold up the agent's next step.
LOCK_TIMEOUT_S = 2.0


def spiral_path(state_dir: str) -> str:
    """The domain's file (`state_dir`: its DomainPaths.dir)."""
    return os.path.join(state_dir, SPIRAL_FILE)


def call_key(tool: str, tool_input: object) -> str:
    """Tool and input as one short hash (an input may be a whole file's content)."""
    try:
        text = json.dumps(tool_input, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(tool_input)
    # crc32 and the length, not a cryptographic hash: it only tells one call from another
    # within an agent's last few, and hashlib (OpenSSL) costs the hook ~4 ms to import.
    raw = f"{tool}\0{text}".encode("utf-8", "replace")
    return f"{zlib.crc32(raw):08x}{len(raw):x}"


def read_spiral(path: str) -> dict:
    """The file's data; {} when it is missing or unreadable (it only ever holds hints)."""
    from comm_node_tui.protocol.fileio import read_bounded

    # bounded, no symlink followed, never blocking on a FIFO: the folder is the agent's
    try:
        data = json.loads(read_bounded(path, MAX_FILE_BYTES))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def note_call(
    path: str,
    tool: str,
    tool_input: object,
    *,
    failed: bool,
    repeats: int,
    now: float,
    coord_dir: str,
) -> int | None:
    """Record one finished tool call. When it is a failure that makes `repeats` failures of
    the same call in a row (other calls between them aside) and this run was not raised yet,
    the count; else None. `coord_dir`: the workspace's state folder, whose coordination lock
    is held while the file is read, changed and written."""
    key = call_key(tool, tool_input)
    if not failed and tool not in EDIT_TOOLS:
        calls = [c for c in read_spiral(path).get("calls", []) if isinstance(c, list)]
        if all(len(c) != 2 or c[0] != key for c in calls):
            # A success of a call with no failures on record changes no count: no lock and
            # no write (most tool calls, on the hook's hot path).
            return None
    from comm_node_tui.coordination.store import CoordStore
    from comm_node_tui.errors import CommNodeError

    try:
        with CoordStore(coord_dir).locked(timeout_s=LOCK_TIMEOUT_S):
            return _note_locked(path, key, tool, failed=failed, repeats=repeats, now=now)
    except (CommNodeError, OSError):
        return None  # the hook must not fail or hang the agent; a lost record delays an alert


def _note_locked(
    path: str, key: str, tool: str, *, failed: bool, repeats: int, now: float
) -> int | None:
    from comm_node_tui.protocol.fileio import atomic_write

    data = read_spiral(path)  # again, under the lock: what another hook wrote meanwhile
    calls = [c for c in data.get("calls", []) if isinstance(c, list) and len(c) == 2]
    alerted = [k for k in data.get("alerted", []) if isinstance(k, str)]
    calls.append([key, bool(failed)])
    # enough history for `repeats` failures with a few other calls between each
    calls = calls[-max(3 * repeats, 20) :]
    count = 0
    for k, f in reversed(calls):
        if k != key:
            continue
        if not f:
            break
        count += 1
    if not failed and key in alerted:
        alerted.remove(key)  # that call works now: a new run may be raised again
    fire = failed and count >= repeats and key not in alerted
    if fire:
        alerted = [*alerted, key][-20:]
    out = {**data, "calls": calls, "alerted": alerted}
    if not failed and tool in EDIT_TOOLS:
        out["last_edit"] = now
    try:
        atomic_write(path, json.dumps(out))
    except OSError:
        pass  # the hook must not fail the agent; a lost record only delays an alert
    return count if fire else None


def raise_spiral(coord: Coordinator, domain: str, why: str, data: dict) -> bool:
    """The alert, and the pause when the policy says so; whether it paused."""
    from comm_node_tui.protocol.events import Event

    policy = coord.ws.settings.agents.spiral_policy
    paused = False
    if policy == "pause":
        from comm_node_tui.coordination.operator import pause, pause_state

        if not pause_state(coord).covers(domain):
            pause(coord, [domain])
            paused = True
    tail = (
        f"; paused by policy (`comm-node resume {domain}` ends it)"
        if paused
        else f"; look at it (`comm-node peek {domain}`), interrupt or message it"
    )
    coord.emit(
        Event(
            "agent.spiral",
            f"{domain}: {why}{tail}",
            agent=domain,
            level="warn",
            data={**data, "alert": True, "policy": policy, "paused": paused},
        )
    )
    return paused
