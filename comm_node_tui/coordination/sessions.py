"""Each domain's last agent conversation: `.comm-node/sessions.json`.

`{"domains": {NAME: {"session_id": UUID, "transcript_path": PATH, "first_seen": T,
"last_seen": T}}}` (T: seconds since the epoch). `comm-node restart` and `comm-node up` read
it to resume the conversation (`claude --resume ID`) instead of starting a new one; the
hook writes it (hooks/handler.py), only when the domain's own agent reports a session id that
is not the one kept, or as a session starts or ends a turn: once a turn, not once a tool.

The hook is on every agent step, so this module is the standard library only. A session id
comes from a hook's payload, untrusted text that ends up on a command line: only the UUID
shape Claude Code uses is kept, and only such an id is ever returned.
"""

from __future__ import annotations

import os

from comm_node_tui.protocol import jsonfast as json

SESSIONS_FILE = "sessions.json"
MAX_SESSIONS_BYTES = 1024 * 1024
MAX_PATH = 4096
LOCK_TIMEOUT_S = 2.0
# [0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}, checked without `re` (the hook
# checks the id on every Stop: importing re costs it about a third of its time, issue 22)
_HEX = frozenset("0123456789abcdefABCDEF")
_DASHES = (8, 13, 18, 23)


def valid_session_id(value: object) -> bool:
    """A Claude Code session id: a UUID, nothing else (it is put on a command line)."""
    return (
        isinstance(value, str)
        and len(value) == 36
        and all((c == "-") if i in _DASHES else (c in _HEX) for i, c in enumerate(value))
    )


def sessions_path(state_dir: str) -> str:
    return os.path.join(state_dir, SESSIONS_FILE)


def read_sessions(state_dir: str) -> dict[str, dict]:
    """Domain name -> its kept session; entries without a valid id are left out, and a file
    that cannot be read is no sessions (a fresh start, never a failed one)."""
    from comm_node_tui.protocol.fileio import read_bounded

    try:
        raw = read_bounded(sessions_path(state_dir), MAX_SESSIONS_BYTES)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    domains = data.get("domains") if isinstance(data, dict) else None
    if not isinstance(domains, dict):
        return {}
    out = {}
    for name, rec in domains.items():
        if isinstance(rec, dict) and valid_session_id(rec.get("session_id")):
            path = rec.get("transcript_path")
            out[name] = {
                "session_id": rec["session_id"],
                "transcript_path": path if isinstance(path, str) and path else None,
                "first_seen": _number(rec.get("first_seen")),
                "last_seen": _number(rec.get("last_seen")),
            }
    return out


def kept_session(state_dir: str, domain: str) -> dict | None:
    """The session kept for `domain`, or None."""
    return read_sessions(state_dir).get(domain)


def note_session(
    state_dir: str, domain: str, session_id: str, transcript_path: object, now: float
) -> bool:
    """Keep `session_id` as `domain`'s conversation (seen at `now`); False when the id is not
    a session id or another writer held the file too long (the next turn writes it)."""
    from comm_node_tui.protocol.fileio import atomic_write, ensure_dir, exclusive_flock

    if not valid_session_id(session_id):
        return False
    path = transcript_path if isinstance(transcript_path, str) else ""
    if len(path) > MAX_PATH or "\x00" in path:
        path = ""
    ensure_dir(state_dir)
    target = sessions_path(state_dir)
    try:
        # Hooks of several domains run at once and each rewrites the whole file.
        with exclusive_flock(target + ".lock", LOCK_TIMEOUT_S, TimeoutError):
            kept = read_sessions(state_dir)
            old = kept.get(domain)
            same = old is not None and old["session_id"] == session_id
            kept[domain] = {
                "session_id": session_id,
                "transcript_path": path or (old["transcript_path"] if same and old else None),
                "first_seen": old["first_seen"] if same and old else now,
                "last_seen": now,
            }
            atomic_write(target, json.dumps({"domains": kept}, indent=1, sort_keys=True))
    except TimeoutError:
        return False
    return True


def short(session_id: str) -> str:
    """How a sentence names a session: its first 8 characters."""
    return session_id[:8] + "…"


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
