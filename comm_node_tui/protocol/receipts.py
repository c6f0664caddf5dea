"""Delivery receipts: what became of each text comm-node typed into an agent (an operator's
injection, a nudge about mail, the kickoff prompt).

One append-only file, `<workspace>/.comm-node/receipts.jsonl`, one line per step of one
delivery: {"id", "t", "agent", "state", ...}. States, in order: queued -> typed -> submitted
-> started -> answered, or failed (with a `reason`). Two kinds of writers, each appending
single lines with one O_APPEND write (they never interleave):
- whoever types (panes/manager.py): queued, typed, submitted, failed;
- the agent's own hooks (hooks/handler.py): `started` when its UserPromptSubmit carries the
  text (compared by `digest`: the typed text may have been made safe with a leading space,
  and the CLI may change blanks), `answered` at the next Stop of that agent.
Only the hook proves a turn started: the screen can show an empty input box for a text that
never reached the model (Claude Code 2.1.330 swallowed it into a dialog, or a hook blocked it).

Stdlib only and no dataclasses: the hook runs this on every prompt (tests/test_layers.py).
"""

from __future__ import annotations

import os
import time

from comm_node_tui.protocol import jsonfast as json
from comm_node_tui.protocol.fileio import append_line

FILE = "receipts.jsonl"
STATES = ("queued", "typed", "submitted", "started", "answered")
FAILED = "failed"
RANK = {s: i for i, s in enumerate(STATES)}
PROVED = ("started", "answered")  # what only the agent's own hook can say
TAIL_BYTES = 64 * 1024  # the hook and the views read this much of the file's end
MAX_BYTES = 4 * 1024 * 1024  # a new delivery rotates the file past this (receipts.1.jsonl)
MATCH_WINDOW_S = 600.0  # a prompt is matched only with deliveries typed this recently
PREVIEW = 60

# Failure reasons (one word each; `comm-node inject --wait` maps them to exit codes).
DIALOG = "dialog"
OPERATOR_TYPING = "operator_typing"
NOT_RUNNING = "not_running"
NOT_STARTED = "not_started"
BLOCKED = "blocked"  # the agent's hook refused the prompt (the operator paused it)


def path_in(state_dir: str) -> str:
    return os.path.join(state_dir, FILE)


# Claude Code 2.1.330 hands some pastes (long ones, and multi-line ones with a blank line) to
# the UserPromptSubmit hook wrapped, with a hex id:
# '\n\n<pasted_content id="7bce">\nTEXT\n</pasted_content id="7bce">\n' (seen in the bench).
PASTE_TAG = r'</?pasted_content(?: id="[^"]*")?>'


def normalise(text: str) -> str:
    """The text as compared: paste wrappers dropped, blanks collapsed (a protecting leading
    space, CR LF, tabs)."""
    if "pasted_content" in text:  # `re` only then: its import costs the hook (issue 22)
        import re

        text = re.sub(PASTE_TAG, " ", text)
    return " ".join(text.split())


def digest(text: str) -> str:
    # the built-in sha256 where there is one: hashlib's import (OpenSSL, blake2) costs the
    # hook on every prompt and Stop; the digest is the same
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256
    return sha256(normalise(text).encode("utf-8")).hexdigest()[:20]


def new_id(now: float | None = None) -> str:
    t = time.time() if now is None else now
    return f"r-{time.strftime('%H%M%S', time.gmtime(t))}-{os.urandom(4).hex()}"


def append(path: str, receipt_id: str, agent: str, state: str, **fields: object) -> dict:
    """Write one step of a delivery; the record written."""
    rec: dict = {"id": receipt_id, "t": round(time.time(), 3), "agent": agent, "state": state}
    rec.update({k: v for k, v in fields.items() if v is not None})
    append_line(path, json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
    return rec


def _rotate(path: str) -> None:
    """receipts.jsonl -> receipts.1.jsonl, by one writer at a time: two typists that both saw
    a full file would otherwise rotate twice, the second moving the brand-new file over the
    history (and the deliveries in flight would lose their opening line)."""
    import fcntl

    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.getsize(path) > MAX_BYTES:  # not rotated by the other one meanwhile
            base, ext = os.path.splitext(path)
            os.replace(path, f"{base}.1{ext}")


def open_receipt(path: str, agent: str, text: str, by: str) -> str:
    """A new delivery of `text` to `agent`, queued; its id. Rotates a full file first."""
    try:
        if os.path.getsize(path) > MAX_BYTES:
            _rotate(path)
    except OSError:
        pass
    rid = new_id()
    flat = normalise(text)
    append(
        path,
        rid,
        agent,
        "queued",
        by=by,
        digest=digest(text),
        chars=len(text),
        preview=flat[:PREVIEW] + ("…" if len(flat) > PREVIEW else ""),
    )
    return rid


def read_records(path: str, tail_bytes: int = TAIL_BYTES) -> list[dict]:
    """The records in the last `tail_bytes` of the file, oldest first (a torn or partial
    first line is skipped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - tail_bytes)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("id"), str):
            out.append(rec)
    return out


def fold(records: list[dict]) -> dict[str, dict]:
    """Each delivery's latest word, by id (insertion order: oldest delivery first).

    A step the hook proved (started, answered) is never undone by a later word from the
    typist (a late "submitted" or a "failed: not started" written just before the hook
    landed): the agent's own hook is the truth."""
    out: dict[str, dict] = {}
    for rec in records:
        rid, state = rec["id"], rec.get("state")
        if not isinstance(state, str) or (state not in RANK and state != FAILED):
            continue
        cur = out.get(rid)
        if cur is None:
            if state != "queued":
                continue  # its opening line was rotated away: too old to show
            cur = out[rid] = {
                "id": rid,
                "agent": rec.get("agent"),
                "by": rec.get("by"),
                "digest": rec.get("digest"),
                "chars": rec.get("chars"),
                "preview": rec.get("preview"),
                "state": "queued",
                "reason": None,
                "attempts": 0,
                "times": {},
            }
        t = rec.get("t")
        times = cur["times"]
        if isinstance(t, (int, float)) and state not in times:
            times[state] = t
        if state == "typed":
            cur["attempts"] += 1
        if cur["state"] in PROVED and (state == FAILED or RANK.get(state, -1) < RANK[cur["state"]]):
            continue
        cur["state"] = state
        cur["reason"] = rec.get("reason") if state in (FAILED, "queued") else None
    return out


_seen: dict[str, tuple[tuple[int, int], dict[str, dict]]] = {}  # path -> (size, mtime), fold


def _folded(path: str) -> dict[str, dict]:
    """The fold of the file's tail, read again only when the file changed (the engine asks
    on every snapshot). Callers copy what they keep: the dicts are shared."""
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (st.st_size, st.st_mtime_ns)
    hit = _seen.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    out = fold(read_records(path))
    _seen.clear()  # one workspace per process in practice: keep one entry
    _seen[path] = (key, out)
    return out


def receipts(path: str, agent: str | None = None, last: int = 0) -> list[dict]:
    """The deliveries in the file's tail (of `agent` when given), oldest first; the `last`
    ones only when it is above 0."""
    folded = [r for r in _folded(path).values() if agent is None or r["agent"] == agent]
    return folded[-last:] if last > 0 else folded


def find(path: str, receipt_id: str) -> dict | None:
    return fold(read_records(path)).get(receipt_id)


def hook_saw(path: str, agent: str, event: str, prompt: str | None, blocked: bool) -> str | None:
    """The hook's bookkeeping: on UserPromptSubmit, the delivery whose text this prompt is
    becomes `started` (or `failed: blocked` when the hook refuses the prompt); on Stop, the
    agent's started deliveries become `answered`. The id it marked, if any."""
    if event not in ("UserPromptSubmit", "Stop") or not os.path.exists(path):
        return None
    now = time.time()
    mine = [r for r in fold(read_records(path)).values() if r["agent"] == agent]
    if event == "Stop":
        marked = None
        for r in mine:
            if r["state"] == "started":
                append(path, r["id"], agent, "answered")
                marked = r["id"]
        return marked
    if not isinstance(prompt, str):
        return None
    want = digest(prompt)
    for r in reversed(mine):  # the newest delivery of this text first
        waiting = r["state"] in ("typed", "submitted") or (
            r["state"] == FAILED and r["reason"] == NOT_STARTED
        )
        typed_at = r["times"].get("typed") or r["times"].get("queued") or 0.0
        if waiting and r["digest"] == want and now - typed_at < MATCH_WINDOW_S:
            if blocked:
                append(path, r["id"], agent, FAILED, reason=BLOCKED)
            else:
                append(path, r["id"], agent, "started")
            return r["id"]
    return None
