"""`comm-node hook`: the one command every Claude Code hook runs.

Reads the hook's JSON on stdin, finds the workspace and domain (the pane's environment, else
`cwd`), updates status.json, guards edits, brings mail to the agent's attention and keeps it
working while urgent mail is unread. It never fails the agent because of comm-node: any
internal error is logged and the hook exits 0. Imports are kept to the standard library and
comm-node's lean modules (bench/hook_startup.py measures the cost).
"""

from __future__ import annotations

import os
import sys

from comm_node_tui.protocol import jsonfast as json

# Annotations only: the hook imports its modules lazily to start fast.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Literal

    from comm_node_tui.protocol.events import Event
    from comm_node_tui.workspace.model import Domain, Workspace

MAX_PAYLOAD = 1024 * 1024
STOP_BLOCK_LIMIT = 3
ANNOUNCED_KEEP = 200

# What each hook event says about the agent (real Claude Code 2.1.330, docs/claude-code.md).
# SubagentStop says nothing: a background sub-agent may finish while its parent sits idle.
# Escape, "No" on a permission prompt and most API errors end a turn with no Stop at all:
# the engine lets the screen correct the state (engine/agent_state.py).
STATE_FOR = {
    "SessionStart": "idle",
    "UserPromptSubmit": "busy",
    "PreToolUse": "busy",
    "PermissionRequest": "waiting",  # fires as the dialog appears (~0.5 s after PreToolUse)
    "PostToolUse": "busy",
    "PostToolUseFailure": "busy",
    "PreCompact": "busy",
    "Stop": "idle",
    "StopFailure": "idle",  # an API error ended the turn
    "SessionEnd": "ended",
}


def _context(payload: dict) -> tuple[Workspace, Domain] | tuple[None, None]:
    """(workspace, domain) or (None, None) when this session is not a comm-node agent."""
    from comm_node_tui.errors import CommNodeError
    from comm_node_tui.workspace.discovery import find_root, load_workspace, resolve_domain

    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else os.getcwd()
    try:
        ws = load_workspace(find_root(cwd=cwd))
        dom = resolve_domain(ws, None, cwd=cwd)
    except CommNodeError:
        return None, None
    return ws, dom


def _state(event: str, payload: dict) -> str | None:
    if event == "Notification":
        kind = str(payload.get("notification_type") or "")
        msg = str(payload.get("message") or "").lower()
        if kind == "permission_prompt" or "permission" in msg:
            return "waiting"
        if kind == "idle_prompt" or "waiting for your input" in msg:
            return "idle"
        return None
    return STATE_FOR.get(event)


def _emit(ws: Workspace, ev: Event) -> None:
    _append_event(ws.paths.events, ev)


def _append_event(path: str, ev: Event) -> None:
    from comm_node_tui.protocol.events import EventLog

    log = EventLog(path, max_bytes=1 << 62)  # append only: the engine rotates
    try:
        log.append(ev)
    except OSError:
        pass
    finally:
        log.close()


TOOL_DETAIL_KEYS = ("command", "file_path", "path", "url", "pattern", "query", "prompt")
TOOL_DETAIL_CHARS = 200


def _tool_detail(tool_input: object) -> str:
    """One line of what a tool call does: its command, the file it edits, the URL it reads."""
    if not isinstance(tool_input, dict):
        return ""
    for key in TOOL_DETAIL_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            line = " ".join(value.split())
            return line if len(line) <= TOOL_DETAIL_CHARS else line[: TOOL_DETAIL_CHARS - 1] + "…"
    return ""


def _output(event: str, **fields: object) -> dict:
    return {"hookSpecificOutput": {"hookEventName": event, **fields}}


def _work_exhausted(ws: Workspace, dom: Domain) -> bool:
    """The engine paused this agent for its spent work budget: read in guarded/, which a
    sandboxed agent cannot write (protocol/guarded.py; an older comm-node's file in the
    domain's own folder only while guarded/ has none)."""
    from comm_node_tui.protocol.guarded import budget_source

    path = budget_source(ws.paths.state, dom.name, dom.paths.legacy_budget)
    try:
        with open(path, encoding="utf-8") as fh:
            work = json.load(fh).get("work") or {}
        return bool(work.get("exhausted")) and work.get("policy") == "pause"
    except (RecursionError, OSError, ValueError, AttributeError):
        return False


def _operator_pause(ws: Workspace, dom: Domain) -> str | None:
    """The one-line refusal when the operator paused this agent (or everyone), else None:
    one small file read on every hook call (coordination/pause.py is the standard library)."""
    from comm_node_tui.coordination.pause import pause_reason, read_pause

    stop = read_pause(ws.paths.state)
    return pause_reason(stop, dom.name) if stop.covers(dom.name) else None


def handle(payload: dict) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) for one hook call."""
    event = payload.get("hook_event_name")
    if not isinstance(event, str):
        return 0, "", ""
    ws, dom = _context(payload)
    if ws is None or dom is None:
        return 0, "", ""
    from comm_node_tui.protocol.status import read_status, update_status

    try:
        current = read_status(dom.paths.status)
    except (ValueError, OSError):
        current = {}
    fields: dict = {"hook_event": event, "updated_by": "hook"}
    for key in ("session_id", "transcript_path"):
        if isinstance(payload.get(key), str):
            fields[key] = payload[key]
    if event == "SubagentStop" and isinstance(payload.get("agent_transcript_path"), str):
        fields["subagent_transcript_path"] = payload["agent_transcript_path"]
    owner = _owner(dom, current)
    if owner:
        fields["agent_pid"], fields["agent_start"] = owner
    state = _state(event, payload)
    if (
        state == "waiting"
        and event == "Notification"
        and current.get("hook_event")
        not in (
            "PreToolUse",
            "PermissionRequest",
            "Notification",
        )
    ):
        # The permission_prompt notice comes seconds after the dialog: when the tool already
        # ran (or was refused) meanwhile, it describes a dialog that is gone.
        state = None
    if state:
        fields["state"] = state
    if event in ("PreToolUse", "PermissionRequest"):
        fields["tool"] = payload.get("tool_name")
        # what a permission prompt asks, for the operator's "needs you" list (engine/needs.py)
        fields["tool_detail"] = _tool_detail(payload.get("tool_input"))
    elif event in (
        "PostToolUse",
        "PostToolUseFailure",
        "Stop",
        "StopFailure",
        "SessionEnd",
        "UserPromptSubmit",
    ):
        fields["tool"] = ""
        fields["tool_detail"] = ""
    out: dict | None = None
    code, err = 0, ""
    stopped = _operator_pause(ws, dom)  # the operator's pause, before the budget's
    paused = stopped is not None or _work_exhausted(ws, dom)

    if event == "PreToolUse":
        tool = payload.get("tool_name")
        reason = None
        if stopped:
            reason = stopped
        elif paused:
            reason = (
                "comm-node paused this agent: its work budget is spent. Stop here and "
                "wait for the operator."
            )
        elif tool in ("Edit", "Write", "MultiEdit", "NotebookEdit"):
            reason = _guard(ws, dom, payload)
        if reason:
            out = _output("PreToolUse", permissionDecision="deny", permissionDecisionReason=reason)
            from comm_node_tui.protocol.events import Event

            _emit(
                ws,
                Event(
                    "edit.denied" if not paused else "tool.denied",
                    f"{dom.name}: {tool} denied: {reason}",
                    agent=dom.name,
                    level="warn",
                    data={"tool": tool, "reason": reason},
                ),
            )
    elif event == "UserPromptSubmit" and paused:
        out = {
            "decision": "block",
            "reason": stopped
            or "comm-node: the work budget of this domain is spent; the operator has paused it.",
        }
    if event in ("UserPromptSubmit", "PostToolUse") and out is None and owner is not False:
        extra = _mail_context(dom, current, fields)
        if extra:
            out = _output(event, additionalContext=extra)
    if event == "Stop" and owner is not False:
        out = _stop(dom, payload, current, fields, paused)
    if event == "SessionStart" and owner is not False:
        extra = _handoff(ws, dom, payload)
        if extra:
            out = _output(event, additionalContext=extra)
    if owner is not False and event in ("UserPromptSubmit", "Stop"):
        _receipts(ws, dom, event, payload, blocked=event == "UserPromptSubmit" and paused)
    if event in ("PostToolUse", "PostToolUseFailure") and payload.get("tool_name") == "Bash":
        _sandbox_refusals(ws, dom, payload)  # Bash only: other tools' cost is unchanged
    if owner is False:
        # Another `claude` run in this folder (a `claude -p`, the agent's own sub-process):
        # the guard above still applies to it, but the domain's state is its agent's.
        if event == "SessionStart":
            _note_other_session(ws, dom, payload)
        return code, (json.dumps(out) if out else ""), err
    try:
        update_status(dom.paths.status, dom.name, **fields)
    except Exception as exc:  # the decision above still reaches Claude Code
        _report(exc)
    _keep_session(ws, dom, event, payload, current)
    if event in ("PostToolUse", "PostToolUseFailure"):
        _spiral(ws, dom, event, payload)
    return code, (json.dumps(out) if out else ""), err


def _sandbox_refusals(ws: Workspace, dom: Domain, payload: dict) -> None:
    """What Claude Code's sandbox refused this Bash call (hooks/refusals.py): one
    `boundary.sandbox_refused` event naming the domain and the paths, for the operator.
    Whichever claude run in the folder made the call (its pane's agent or another)."""
    if not dom.sandbox:
        return
    try:
        from comm_node_tui.hooks.refusals import output_text, refused_paths

        cwd = payload.get("cwd")
        tool_input = payload.get("tool_input")
        command = tool_input.get("command") if isinstance(tool_input, dict) else None
        found = refused_paths(
            output_text(payload), cwd if isinstance(cwd, str) else None, command or ""
        )
        if not found:
            return
        from comm_node_tui.protocol.events import Event

        paths = [p for p, _why in found]
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        # relative: after a `cd` comm-node could not follow (hooks/refusals.py), or no cwd
        if os.path.isabs(paths[0]):
            where = ""
        elif isinstance(cwd, str) and cwd:
            where = " (relative to a folder it changed to)"
        else:
            where = " (relative to a folder the hook was not told)"
        _emit(
            ws,
            Event(
                "boundary.sandbox_refused",
                f"{dom.name}: the sandbox refused {paths[0]}{where}{more} ({found[0][1]})",
                agent=dom.name,
                level="warn",
                data={
                    "domain": dom.name,
                    "path": paths[0],
                    "paths": paths,
                    "reason": found[0][1],
                    "command": _tool_detail(payload.get("tool_input")),
                },
            ),
        )
    except Exception as exc:  # never fail the agent because of comm-node
        _report(exc)


def _receipts(ws: Workspace, dom: Domain, event: str, payload: dict, blocked: bool) -> None:
    """Delivery receipts (protocol/receipts.py): this prompt proves a delivery's turn started
    (or was refused by this hook), this Stop that it was answered. One read of the receipts
    file's tail and at most one appended line; never fails the hook."""
    from comm_node_tui.protocol.receipts import hook_saw, path_in

    try:
        prompt = payload.get("prompt")
        hook_saw(path_in(ws.paths.state), dom.name, event, prompt, blocked)
    except Exception as exc:
        _report(exc)


def _spiral(ws: Workspace, dom: Domain, event: str, payload: dict) -> None:
    """Note the finished tool call; the same call failing [agents] spiral_repeats times is
    `agent.spiral` (and a pause by policy): coordination/spiral.py. One small file read and
    write per tool call; the Coordinator is loaded only when a spiral is raised."""
    import time

    from comm_node_tui.coordination.spiral import note_call, raise_spiral, spiral_path

    tool = payload.get("tool_name")
    if not isinstance(tool, str):
        return
    failed = event == "PostToolUseFailure"
    try:
        count = note_call(
            spiral_path(dom.paths.dir),
            tool,
            payload.get("tool_input"),
            failed=failed,
            repeats=ws.settings.agents.spiral_repeats,
            now=time.time(),
            coord_dir=ws.paths.state,
        )
        if count is None:
            return
        from comm_node_tui.coordination.coordinator import Coordinator

        error = " ".join(str(payload.get("error") or "").split())[:160]
        detail = _tool_detail(payload.get("tool_input"))
        raise_spiral(
            Coordinator(ws),
            dom.name,
            f"the same {tool} call failed {count} times in a row"
            + (f" ({detail})" if detail else "")
            + (f": {error}" if error else ""),
            {"kind": "repeat", "tool": tool, "count": count, "detail": detail},
        )
    except Exception as exc:  # never fail the agent because of comm-node
        _report(exc)


# Events after which the kept session is written even when its id did not change: its
# last_seen moves once a turn, and a sessions.json lost or older than status.json heals.
SESSION_MARKS = ("SessionStart", "Stop", "SessionEnd")


def _keep_session(ws: Workspace, dom: Domain, event: str, payload: dict, current: dict) -> None:
    """Keep the session id of the domain's own agent for `restart` and `up` to resume
    (called only for it: a `claude -p` in the folder returned before this). One dict
    comparison on most hook calls; a small locked rewrite when the id changes."""
    session = payload.get("session_id")
    if not isinstance(session, str):
        return
    if session == current.get("session_id") and event not in SESSION_MARKS:
        return
    import time

    from comm_node_tui.coordination.sessions import note_session

    try:
        note_session(ws.paths.state, dom.name, session, payload.get("transcript_path"), time.time())
    except OSError as exc:
        _report(exc)


def _owner(dom: Domain, current: dict) -> tuple[int, int] | Literal[False] | None:
    """(pid, start) of this hook's Claude Code process when it is the domain's agent; False
    when another live process is; None when that cannot be told (no /proc, not under claude).

    The agent is the process that reported first and is still alive; a claude started by
    comm-node in the domain's pane ($COMM_NODE_DOMAIN, not under another claude) takes over."""
    from comm_node_tui.protocol.procs import agent_process, is_alive, under_agent

    me = agent_process()
    if me is None:
        return None
    pid, start = current.get("agent_pid"), current.get("agent_start")
    if not isinstance(pid, int) or (pid, start) == me:
        return me
    if not is_alive(pid, start if isinstance(start, int) else None):
        return me
    if os.environ.get("COMM_NODE_DOMAIN") == dom.name and not under_agent(me[0]):
        return me
    return False


def _note_other_session(ws: Workspace, dom: Domain, payload: dict) -> None:
    from comm_node_tui.protocol.events import Event

    session = str(payload.get("session_id") or "?")[:40]
    _emit(
        ws,
        Event(
            "agent.other_session",
            f"{dom.name}: another Claude Code session ({session}) started in its folder; "
            "the domain's state stays with its agent",
            agent=dom.name,
            data={"session_id": session},
        ),
    )


def _guard(ws: Workspace, dom: Domain, payload: dict) -> str | None:
    from comm_node_tui.hooks.guard import check, target_path

    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, dict):
        return None
    cwd = payload.get("cwd")
    if not isinstance(cwd, str):
        cwd = dom.path
    path = target_path(tool_input, cwd)
    if path is None:
        return None
    reason = check(ws, dom, path)
    if reason is None and ws.settings.agents.auto_lock_on_edit:
        _auto_lock(ws, dom, path)
    return reason


def _auto_lock(ws: Workspace, dom: Domain, path: str) -> None:
    """Lock the file on its first edit (slow path: only when not yet held)."""
    rel = os.path.relpath(path, dom.path)
    if _holds(ws, dom, path, "/" + rel):
        return  # every later edit of the file: the locks index says so, no Coordinator
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.errors import CommNodeError

    try:
        coord = Coordinator(ws)
        if not any(lk.holder == dom.name and lk.pattern == "/" + rel for lk in coord.locks()):
            coord.acquire(dom, ["/" + rel], reason="auto-lock on edit")
    except (CommNodeError, ValueError, OSError):
        pass  # the guard already allowed the edit; a lock race is not the agent's problem


def _holds(ws: Workspace, dom: Domain, path: str, pattern: str) -> bool:
    """True when locks.index (coordination/store.py) shows `dom` holding `pattern`, unexpired:
    the lock a file's first edit took is filed under the file's own path, so this reads a
    few lines whatever the number of locks. False sends _auto_lock to the Coordinator."""
    import time

    from comm_node_tui.coordination.store import locks_for

    now = time.time()
    for rec in locks_for(ws.paths.state, path.lstrip("/")) or []:
        try:
            if rec["holder"] == dom.name and rec["pattern"] == pattern and rec["expires"] > now:
                return True
        except (KeyError, TypeError):
            continue
    return False


def _mail_context(dom: Domain, current: dict, fields: dict) -> str | None:
    from comm_node_tui.hooks.mail import IMPORTANT, summary, unread

    announced = current.get("mail_announced")
    if not isinstance(announced, list):
        announced = []
    new = [m for m in unread(dom.paths) if m["priority"] in IMPORTANT and m["id"] not in announced]
    if not new:
        return None
    fields["mail_announced"] = (announced + [m["id"] for m in new])[-ANNOUNCED_KEEP:]
    return summary(new)


def _handoff(ws: Workspace, dom: Domain, payload: dict) -> str | None:
    """Where the agent was (task, contract, locks, mail, last failure), for every kind of
    session start. SessionStart is rare: the heavier reads live in hooks/handoff.py,
    imported here only, so the other events' imports stay as they were."""
    try:
        from comm_node_tui.hooks.handoff import context

        return context(ws, dom, payload.get("source"))
    except Exception as exc:  # a broken task file or overlay: the state is still recorded
        _report(exc)  # the session starts anyway, without its hand-off
        return None


def _stop(dom: Domain, payload: dict, current: dict, fields: dict, paused: bool) -> dict | None:
    from comm_node_tui.hooks.mail import unread

    blocks = int(current.get("stop_blocks") or 0)
    urgent = [m for m in unread(dom.paths) if m["priority"] == "urgent"]
    if paused or not urgent:
        fields["stop_blocks"] = 0
        return None
    if payload.get("stop_hook_active") and blocks >= STOP_BLOCK_LIMIT:
        fields["stop_blocks"] = 0  # give up: the agent would loop forever otherwise
        return None
    fields["stop_blocks"] = blocks + 1
    fields["state"] = "busy"
    ids = ", ".join(m["id"] for m in urgent[:5])
    return {
        "decision": "block",
        "reason": f"comm-node: {len(urgent)} urgent unread message(s) ({ids}). Read them "
        "with `comm-node inbox` / `comm-node read ID` and act on them before "
        "you stop.",
    }


def main(args: argparse.Namespace | None = None) -> int:
    try:
        raw = sys.stdin.buffer.read(MAX_PAYLOAD + 1)
        if len(raw) > MAX_PAYLOAD:
            return 0
        payload = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        if not isinstance(payload, dict):
            return 0
        code, out, err = handle(payload)
    except Exception as exc:  # never fail the agent because of comm-node
        _report(exc)
        return 0
    if out:
        sys.stdout.write(out + "\n")
    if err:
        sys.stderr.write(err + "\n")
    return code


def _report(exc: Exception) -> None:
    """Log an internal error as `hook.error`, if there is a workspace to log it in."""
    try:
        from comm_node_tui.protocol.events import Event
        from comm_node_tui.protocol.paths import WorkspacePaths
        from comm_node_tui.workspace.discovery import find_root

        path = WorkspacePaths(find_root()).events
        _append_event(path, Event("hook.error", f"{type(exc).__name__}: {exc}", level="error"))
    except Exception:
        pass
