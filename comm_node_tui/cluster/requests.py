"""The operator's requests between machines: the shape of one, and the owner's memory of
those it has done.

A room or CLI on m1 acting on an agent that runs on m2 sends a request on m2's subject
(`cn.<project>.ops.m2`, NATS request/reply); m2's engine does it with the same operator
service its own room uses and replies with the one line that service returns. Each request
carries an id made by the requester; a request sent again (a lost reply, a retry after a
timeout) is answered from this memory, never done twice. The memory is a small journal in
the engine's state folder: an id is written down *before* the action starts, so an engine
that dies mid-action and comes back refuses the retry ("not done again") instead of typing
the text a second time: at most once, and the operator is told to look. A read (`peek`: the
agent's pane as text; `review_files`, `review_patch`: its domain's changes, for the review
screen) does nothing, so it is neither written down nor logged.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict

from comm_node_tui.protocol.fileio import FILE_MODE

JOURNAL = "remote-requests.jsonl"
KEEP = 1000  # requests remembered (a retry comes within seconds; this is hours of them)
MAX_REQUEST_BYTES = 1024 * 1024 + 4096  # an inject's text is at most 1 MiB (the CLI's limit)

# action -> the arguments it takes (name: type); anything else in a request is refused
ACTIONS: dict[str, dict[str, type]] = {
    "inject": {"text": str},
    "answer": {"text": str, "reply_to": str},
    "interrupt": {},
    "approve": {"seen": str},
    "deny": {"seen": str},
    "kill": {},
    "restart": {"fresh": bool},
    "grant_budget": {"tokens": int},
    "release_lock": {"pattern": str},
    "pause": {"names": list},
    "resume": {"names": list},
    "peek": {"lines": int, "ansi": bool},
    "review_files": {},
    "review_patch": {"path": str},
}
# Actions that only read: neither written down nor logged (the room's preview of another
# machine's agent asks every second), and safe to answer again.
READ_ONLY = frozenset({"peek", "review_files", "review_patch"})
PEEK_MAX_LINES = 2000  # history asked for, at most
PEEK_MAX_CHARS = 256 * 1024  # a screen's text sent back, at most (its end: the newest)
PEEK_MAX_REPLY_BYTES = 768 * 1024  # its JSON reply, at most (NATS refuses over 1 MB)


class BadRequest(ValueError):
    pass


def parse(data: bytes) -> dict:
    """A request as sent by cluster/ops.py, checked field by field (BadRequest: one line
    naming the field). Text from another machine is data: never markup, keys or shell."""
    if len(data) > MAX_REQUEST_BYTES:
        raise BadRequest(f"request: {len(data)} bytes, over {MAX_REQUEST_BYTES}")
    try:
        req = json.loads(data)
    except ValueError as exc:
        raise BadRequest(f"request: not JSON ({exc})") from None
    if not isinstance(req, dict):
        raise BadRequest("request: not an object")
    for field in ("id", "action", "agent", "from"):
        if not isinstance(req.get(field), str) or not req[field]:
            raise BadRequest(f"request: field '{field}' must be non-empty text")
    if len(req["id"]) > 100:
        raise BadRequest("request: field 'id' is over 100 characters")
    wanted = ACTIONS.get(req["action"])
    if wanted is None:
        raise BadRequest(f"request: field 'action': no action '{req['action'][:40]}'")
    args = req.get("args") or {}
    if not isinstance(args, dict):
        raise BadRequest("request: field 'args' must be an object")
    for key, value in args.items():
        kind = wanted.get(key)
        if kind is None:
            raise BadRequest(
                f"request: field 'args.{key[:40]}': not an argument of {req['action']}"
            )
        if value is not None and (
            not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        ):
            raise BadRequest(f"request: field 'args.{key}' must be {kind.__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise BadRequest(f"request: field 'args.{key}' must be a list of names")
    return {**req, "args": args}


class RequestMemory:
    """The ids this engine was asked to act on, and what it answered (one writer: the
    engine). `begin` says whether to act; `finish` records the answer."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, JOURNAL)
        self._answers: OrderedDict[str, dict | None] = OrderedDict()  # None: under way
        self._lock = threading.Lock()
        self._lines = 0
        self._cut = False  # the file ends in a line cut short (a crash): start a new one
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return
        self._cut = bool(text) and not text.endswith("\n")
        lines = text.splitlines()
        for line in lines[-KEEP * 2 :]:
            try:
                rec = json.loads(line)
                rid = rec["id"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
            if not isinstance(rid, str):
                continue
            answer = rec.get("answer")
            if answer is None and rid in self._answers:
                continue
            self._answers[rid] = answer if isinstance(answer, dict) else None
            self._answers.move_to_end(rid)
        self._lines = len(lines)
        while len(self._answers) > KEEP:
            self._answers.popitem(last=False)

    def seen(self, rid: str) -> tuple[bool, dict | None]:
        """(known, its answer): known with no answer means it began and never finished."""
        with self._lock:
            if rid not in self._answers:
                return False, None
            return True, self._answers[rid]

    def begin(self, rid: str, what: dict) -> None:
        with self._lock:
            self._answers[rid] = None
            self._append({"id": rid, **what})

    def finish(self, rid: str, answer: dict) -> None:
        with self._lock:
            self._answers[rid] = answer
            self._append({"id": rid, "answer": answer})
            while len(self._answers) > KEEP:
                self._answers.popitem(last=False)

    def _append(self, rec: dict) -> None:
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self._cut:
            line, self._cut = "\n" + line, False
        try:
            if self._lines > KEEP * 4:
                self._compact()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
            self._lines += 1
        except OSError:
            pass  # a full disk: the memory in this process still de-duplicates

    def _compact(self) -> None:
        from comm_node_tui.protocol.fileio import atomic_write

        keep = [
            json.dumps({"id": k, "answer": v} if v is not None else {"id": k}) + "\n"
            for k, v in self._answers.items()
        ]
        atomic_write(self.path, "".join(keep))
        self._lines = len(keep)
