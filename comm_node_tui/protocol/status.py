"""status.json: the agent side's account of itself (written by the CLI and, later, hooks).

The engine only reads it. Writers merge into what is there, so the hook's session id and the
agent's own progress text do not erase each other.
"""

from __future__ import annotations

from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.fileio import atomic_write, read_bounded
from comm_node_tui.protocol.messages import now_iso

STATES = ("starting", "busy", "idle", "waiting", "blocked", "done", "error", "ended")
MAX_STATUS_BYTES = 64 * 1024
MAX_PROGRESS_CHARS = 500


def read_status(path: str) -> dict:
    """The status as a dict; {} when missing; ValueError (naming the file) when garbage."""
    try:
        raw = read_bounded(path, MAX_STATUS_BYTES)
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    return data


MAX_CLOCK_SKEW_S = 60


def sane_heartbeat(status: dict, path: str, now: float | None = None) -> str | None:
    """A heartbeat that cannot be read or lies in the future would keep a dead agent
    "alive" forever: replace it (in `status`) with the time the file was last written, and
    say why; None when it was fine."""
    import os
    import time
    from datetime import datetime

    text = status.get("last_heartbeat")
    if text is None:
        return None
    try:
        then = datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError, OverflowError):
        problem = f"{path}: last_heartbeat {str(text)[:40]!r} is not a time"
    else:
        if then - (time.time() if now is None else now) <= MAX_CLOCK_SKEW_S:
            return None
        problem = f"{path}: last_heartbeat {str(text)[:40]} is in the future"
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = 0.0
    status["last_heartbeat"] = now_iso(mtime)
    return problem + "; using the time the file was written"


def update_status(path: str, domain: str, **fields: object) -> dict:
    """Merge `fields` (None values are left out) into status.json and refresh the heartbeat."""
    try:
        current = read_status(path)
    except (ValueError, OSError):
        current = {}  # a garbage status is replaced, not fatal to the agent
    state = fields.get("state")
    if state is not None and state not in STATES:
        raise ValueError(f"state: {state!r} is not one of {', '.join(STATES)}")
    for key, value in fields.items():
        if value is not None:
            current[key] = value
    current["domain"] = domain
    current["last_heartbeat"] = now_iso()
    data = json.dumps(current, ensure_ascii=False, indent=1) + "\n"
    try:
        atomic_write(path, data)
    except FileNotFoundError:  # the first write, before any engine made the folder
        import os

        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, data)
    return current
