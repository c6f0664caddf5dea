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
    """One request (checked by cluster/requests.py parse): {"ok", "line", "exit"}."""
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
