"""([cluster]) The owning engine's side of the operator's requests from other machines: each
is carried out by the same operator service this machine's room uses (actions.py), so a room
on m1 acting on m2's agent gets exactly what m2's room would: the same checks (a paused agent
is not typed into; approve answers only the prompt the operator read), the same events in
m2's log, the same one line back. The relay (cluster/relay.py) de-duplicates by request id
and runs this in a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comm_node_tui.errors import CommNodeError

if TYPE_CHECKING:
    from comm_node_tui.engine.engine import Engine
    from comm_node_tui.integration.diff import FileChange, Patch
    from comm_node_tui.integration.gitwork import Work
    from comm_node_tui.operator.actions import OperatorActions


def answer_requests(engine: Engine) -> None:
    """Let the engine's relay carry out requests for this machine's agents (a no-op
    without [cluster])."""
    if engine.relay is None:
        return
    from comm_node_tui.operator.actions import OperatorActions

    ops = OperatorActions(engine.ws, lambda: engine.coord, local_only=True)
    engine.relay.on_request = lambda req: perform(ops, req)


def perform(ops: OperatorActions, req: dict) -> dict:
    """One request (checked by cluster/requests.py parse): {"ok", "line", "exit"}, and
    "data" for the review screen's reads."""
    action, agent, args = req["action"], req["agent"], req["args"]
    try:
        if action in ("pause", "resume"):
            names = args.get("names")
            line = getattr(ops, action)(None if names is None else list(names))
        elif action == "release_lock":
            line = ops.release_lock(agent, str(args.get("pattern") or ""))
        elif action == "grant_budget":
            line = ops.grant_budget(agent, int(args.get("tokens") or 0))
        elif action == "restart":
            line = ops.restart(agent, fresh=bool(args.get("fresh")))
        elif action in ("approve", "deny"):
            line = getattr(ops, action)(agent, args.get("seen"))
        elif action == "inject":
            line = ops.inject(agent, str(args.get("text") or ""))
        elif action == "peek":
            line = peek_text(ops, agent, args)
        elif action in ("review_files", "review_patch"):
            data = review_data(ops, agent, action, args)
            return {"ok": True, "line": "", "exit": 0, "data": data}
        elif action == "answer":
            line = ops.answer(agent, str(args.get("text") or ""), args.get("reply_to"))
        else:  # interrupt, kill: the agent alone
            line = getattr(ops, action)(agent)
    except CommNodeError as exc:  # the relay logs it (operator.remote, a warning)
        return {"ok": False, "line": str(exc), "exit": exc.exit_code}
    return {"ok": True, "line": line, "exit": 0}


def peek_text(ops: OperatorActions, agent: str, args: dict) -> str:
    """The agent's pane as the local preview reads it, bounded (its newest part): the
    screen and at most PEEK_MAX_LINES of history (reply_bounded)."""
    from comm_node_tui.cluster.requests import PEEK_MAX_LINES

    lines = min(max(int(args.get("lines") or 0), 0), PEEK_MAX_LINES)
    try:
        text = ops.panes().peek(agent, lines=lines, ansi=bool(args.get("ansi")))
    except CommNodeError:
        raise
    except Exception as exc:  # tmux gone, the pane gone: one line back, not a traceback
        raise CommNodeError(
            f"{agent}: no pane to read ({type(exc).__name__}: {exc})"[:300]
        ) from None
    return reply_bounded(text)


def review_data(ops: OperatorActions, agent: str, action: str, args: dict) -> dict:
    """The review screen's data for another machine's room (read-only): where the domain's
    work is and the files it changed, or one file's patch; bounded like a peek's reply (the
    files list cut, a patch too large to send a note), in bytes of JSON."""
    import dataclasses
    import json

    from comm_node_tui.cluster.requests import PEEK_MAX_REPLY_BYTES

    work, files, total = ops.review_files(agent)
    out: dict = {"work": dataclasses.asdict(work), "total": total}
    if action == "review_files":
        listed = [_change(f) for f in files]
        while listed and len(json.dumps(listed).encode()) > PEEK_MAX_REPLY_BYTES - 4096:
            listed = listed[: len(listed) * 3 // 4]  # the first ones, as the screen cuts
        out["files"] = listed
        return out
    path = str(args.get("path") or "")
    change = next((f for f in files if f.path == path), None)
    if change is None:
        raise CommNodeError(f"{agent}: {path[:200]} is not among its changed files now")
    patch = ops.review_patch(work, change)
    text, note = patch.text, patch.note
    if len(json.dumps(text, ensure_ascii=False).encode()) > PEEK_MAX_REPLY_BYTES - 4096:
        text, note = "", "diff too large to send from its machine: review it there"
    out["patch"] = {"path": patch.path, "text": text, "note": note}
    return out


def _change(f: object) -> dict:
    import dataclasses

    d = dataclasses.asdict(f)  # type: ignore[call-overload]
    d.pop("raw", None)  # git's own spelling: this machine passes it back to its git only
    return d


def remote_review_files(data: object, agent: str) -> tuple[Work, list[FileChange], int]:
    """The review's files as another machine's engine sent them, checked field by field
    (its bytes are input: a wrong shape is one line naming the field) and cleaned of control
    characters (the screen shows names as plain text)."""
    from comm_node_tui.integration.diff import FileChange, clean
    from comm_node_tui.integration.gitwork import Work

    def bad(field: str) -> CommNodeError:
        return CommNodeError(f"{agent}: its engine's review data: field '{field}' is not valid")

    if not isinstance(data, dict):
        raise bad("data")
    w, files, total = data.get("work"), data.get("files"), data.get("total")
    for field, ok in (
        ("work", isinstance(w, dict)),
        ("files", isinstance(files, list)),
        ("total", _is_int(total)),
    ):
        if not ok:
            raise bad(field)
    assert isinstance(w, dict) and isinstance(files, list) and isinstance(total, int)
    texts = ("folder", "top", "branch", "base", "since")
    if any(w.get(k) is not None and not isinstance(w.get(k), str) for k in texts):
        raise bad("work")
    if w.get("mode") not in ("branch", "tree", "none"):
        raise bad("work.mode")
    shown = {k: clean(w[k]) if isinstance(w.get(k), str) else None for k in texts}
    work = Work(
        agent, shown["folder"] or "", shown["top"], shown["branch"], shown["base"],
        shown["since"], w["mode"],
    )  # fmt: skip
    changes = []
    for i, f in enumerate(files):
        ok = (
            isinstance(f, dict)
            and isinstance(f.get("path"), str)
            and isinstance(f.get("status"), str)
            and all(f.get(k) is None or _is_int(f.get(k)) for k in ("added", "removed"))
            and (f.get("old_path") is None or isinstance(f.get("old_path"), str))
        )
        if not ok:
            raise bad(f"files[{i}]")
        old = f.get("old_path")
        changes.append(
            FileChange(
                clean(f["path"]), clean(f["status"])[:2], f.get("added"), f.get("removed"),
                clean(old) if old is not None else None,
            )
        )  # fmt: skip
    return work, changes, total


def remote_patch(data: object, change: FileChange) -> Patch:
    """One file's patch as its machine's engine sent it (checked, cleaned: the screen shows
    it through Syntax, never as markup, and no control character reaches the terminal)."""
    from comm_node_tui.integration.diff import Patch, clean

    p = data.get("patch") if isinstance(data, dict) else None
    if not isinstance(p, dict) or not all(isinstance(p.get(k), str) for k in ("text", "note")):
        return Patch(change.path, "", "its engine's reply has no valid field 'patch'")
    return Patch(change.path, clean(p["text"]), clean(p["note"])[:300])


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def reply_bounded(text: str) -> str:
    """The newest part of a pane's text that a reply may carry: PEEK_MAX_CHARS, and in bytes
    of JSON PEEK_MAX_REPLY_BYTES. An escape (an ANSI screen) takes 6 bytes a character
    there, and over NATS's 1 MB message limit the reply fails and the asker waits for
    nothing."""
    import json

    from comm_node_tui.cluster.requests import PEEK_MAX_CHARS, PEEK_MAX_REPLY_BYTES

    text = text[-PEEK_MAX_CHARS:]
    while len(json.dumps(text, ensure_ascii=False).encode()) > PEEK_MAX_REPLY_BYTES:
        text = text[len(text) // 4 :]
    return text
