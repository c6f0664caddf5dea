"""One tmux pane per domain agent: up, down, attach, inject, interrupt, kill, restart, peek.

The session is `[tmux] session` on the server `[tmux] socket` (overridden by
$COMM_NODE_TMUX_SOCKET). Window 0 shows the event log; each agent gets a window named after
its domain (layout "windows") or a pane of one tiled window (layout "tiled"). Panes keep
their dead process visible (remain-on-exit) so an agent that exits is reported, not gone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
from collections.abc import Callable

from comm_node_tui.adapters.agent_cli import (
    Unsafe,
    agent_cli_for,
    comm_node_argv,
    comm_node_command,
)
from comm_node_tui.adapters.tmux import DOMAIN_OPTION, Pane, Tmux, TmuxError
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.events import Event
from comm_node_tui.workspace.model import Domain, Workspace

HISTORY_LIMIT = 50_000
DEFAULT_SIZE = (200, 50)
LOG_WINDOW = "comm-node"
TILED_WINDOW = "agents"


def socket_for(ws: Workspace) -> str | None:
    env = os.environ.get("COMM_NODE_TMUX_SOCKET")
    if env is not None:
        return env or None
    return ws.settings.tmux.socket or None


def session_for(ws: Workspace) -> str:
    return ws.settings.tmux.session_for(ws.project)


def pane_size() -> tuple[int, int]:
    """The real terminal's size when there is one, else 200x50."""
    for fd in (1, 0, 2):
        if os.isatty(fd):
            try:
                size = os.get_terminal_size(fd)
                return max(size.columns, 80), max(size.lines, 24)
            except OSError:
                continue
    return DEFAULT_SIZE


def pane_command(command: str, cli_dir: str) -> str:
    """The agent's command as the pane runs it (`sh -c`): with comm-node's own folder first
    on PATH, so the agent's `comm-node ...` calls find the comm-node that started it even
    when that one is not on the user's PATH (a venv). Set in the command because tmux
    (3.3) ignores `-e PATH=...` for new panes."""
    return f'PATH={shlex.quote(cli_dir)}:"$PATH"; export PATH; {command}'


class AgentPanes:
    def __init__(self, ws: Workspace, coord: Coordinator | None = None) -> None:
        self.ws = ws
        self.coord = coord or Coordinator(ws)
        self.cli = agent_cli_for(ws)
        self.tmux = Tmux(socket_for(ws), session_for(ws))
        self._screens: dict[str, tuple[int, float, str]] = {}
        self.captures = 0
        self._systemd: bool | None = None  # whether a user systemd answers (asked once)

    @property
    def session(self) -> str:
        return self.tmux.session

    def emit(self, event: Event) -> None:
        self.coord.emit(event)

    def _env(self, dom: Domain) -> list[str]:
        env = {
            "COMM_NODE_WORKSPACE": self.ws.root,
            "COMM_NODE_DOMAIN": dom.name,
        }
        args = []
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        return args

    def cli_dir(self) -> str:
        """A folder holding only a `comm-node` that runs this installation (nothing else of
        its environment, so the agent's `python` stays the project's own)."""
        from comm_node_tui.protocol.fileio import write_script

        folder = os.path.join(self.ws.paths.state, "bin")
        command = comm_node_command()
        write_script(os.path.join(folder, "comm-node"), f'#!/bin/sh\nexec {command} "$@"\n')
        return folder

    def pane(self, name: str, *, alive: bool = True) -> Pane:
        dom = self.ws.domain(name)
        self.tmux.require_session()
        pane = self.tmux.panes().get(dom.name)
        if pane is None:
            raise CommNodeError(
                f"{name} has no pane in tmux session {self.session} "
                f"({self.tmux.where}): start it with `comm-node up {name}`"
            )
        if alive and pane.dead:
            raise CommNodeError(
                f"{name}'s agent has exited (status {pane.dead_status}): `comm-node restart {name}`"
            )
        return pane

    # ---- up / down ----------------------------------------------------------------------
    def start_plan(self, dom: Domain, fresh: bool = False) -> dict:
        """How `dom`'s agent starts: {"command", "session": the id it resumes or None,
        "fresh": why not resumed or None}. Resumes the conversation the hooks kept
        (coordination/sessions.py) unless `fresh`, none is kept, or the CLI says it cannot
        (its transcript is gone: Claude Code would fail where a fresh start works)."""
        from comm_node_tui.coordination.sessions import kept_session, short

        kept = None if fresh else kept_session(self.ws.paths.state, dom.name)
        why = None
        if fresh:
            why = "fresh conversation asked for"
        elif kept is None:
            why = "no conversation kept"
        else:
            problem = self.cli.resume_problem(dom, kept)
            if problem:
                why = f"session {short(kept['session_id'])} cannot be resumed: {problem}"
                kept = None
        sid = kept["session_id"] if kept else None
        return {"command": self.cli.command(dom, resume=sid), "session": sid, "fresh": why}

    def up(self, names: list[str] | None = None, *, fresh: bool = False) -> list[dict]:
        """Start (or adopt) the agents' panes. An agent whose pane is gone or dead resumes
        its last conversation (after a reboot, a lost tmux server) unless `fresh`."""
        doms = [self.ws.domain(n) for n in names] if names else list(self.ws.domains.values())
        layout = self.ws.settings.tmux.layout
        s = self.session
        if not self.tmux.has_session():
            width, height = pane_size()
            log_cmd = shlex.join([*comm_node_argv(), "log", "--follow", "-w", self.ws.root])
            self.tmux.cmd(
                "new-session",
                "-d",
                "-s",
                s,
                "-n",
                LOG_WINDOW,
                "-x",
                str(width),
                "-y",
                str(height),
                "-c",
                self.ws.root,
                log_cmd,
            )
            # Only panes created after this get the longer history: agents come next.
            self.tmux.cmd("set-option", "-t", f"={s}:", "history-limit", str(HISTORY_LIMIT))
            self.emit(
                Event(
                    "tmux.session",
                    f"session {s} created ({self.tmux.where}, {width}x{height})",
                    data={"session": s},
                )
            )
        panes = self.tmux.panes()
        out = []
        for dom in doms:
            if not os.path.isdir(dom.path):
                raise CommNodeError(f"{dom.name}: {dom.path} does not exist")
            existing = panes.get(dom.name)
            if existing is not None and not existing.dead:
                out.append(
                    {
                        "domain": dom.name,
                        "pane": existing.id,
                        "pid": existing.pid,
                        "action": "adopted",
                    }
                )
                continue
            plan = self.start_plan(dom, fresh)
            if existing is not None:
                self._respawn(existing, dom, plan["command"])
                pane = self.tmux.panes()[dom.name]
                action = "respawned"
            else:
                pane = self._create(dom, layout, plan["command"])
                action = "started"
            conversation = {"session": plan["session"], "fresh": plan["fresh"]}
            out.append(
                {"domain": dom.name, "pane": pane.id, "pid": pane.pid, "action": action}
                | conversation
            )
            self.emit(
                Event(
                    "agent.started",
                    f"{dom.name}: {action} in pane {pane.id} (pid {pane.pid}), "
                    f"{conversation_words(plan)}: {plan['command']}",
                    agent=dom.name,
                    data={"pane": pane.id, "pid": pane.pid, "action": action} | conversation,
                )
            )
        return out

    def _prepare(self, dom: Domain, command: str) -> str:
        """Before an agent starts: its sandbox settings written from the current config and
        its limits put on its command (issue 23); what cannot be done, told in one line."""
        from comm_node_tui.panes.limits import limited, user_systemd

        done = self.cli.write_sandbox(self.ws, dom)
        if done.get("launch_args"):
            # its own walls (domains sharing a folder): the settings file it reads. A
            # command with a --settings of its own keeps it (a second one would silently
            # replace the user's file), and the operator is told the walls are not passed.
            try:
                words = shlex.split(command)
            except ValueError:
                words = command.split()
            if any(w == "--settings" or w.startswith("--settings=") for w in words):
                self.emit(
                    Event(
                        "sandbox.not_walled",
                        f"{dom.name}: its command has a --settings file of its own, so its "
                        f"walls from the domains sharing its folder "
                        f"({done['launch_args'][-1]}) are not passed: merge that file's "
                        "sandbox.filesystem.denyWrite into yours",
                        agent=dom.name,
                        level="warn",
                    )
                )
            else:
                command += " " + shlex.join(done["launch_args"])
        if done["changed"]:
            words = "on" if done["enabled"] else "off"
            if done.get("prompts"):
                words += f" (commands it cannot check may still ask: {done['prompts']})"
            for line in done.get("partial") or ():
                words += f"; {line}"
            self.emit(
                Event(
                    "sandbox.written",
                    f"{dom.name}: sandbox {words} in {done['path']}",
                    agent=dom.name,
                    data=done,
                )
            )
        why = self.cli.sandbox_unavailable() if done["enabled"] else None
        if why:
            # Claude Code refuses to start (failIfUnavailable): the pane shows its exit
            self.emit(
                Event(
                    "sandbox.unavailable",
                    f"{dom.name}: sandbox cannot start: {why}; the agent will not run",
                    agent=dom.name,
                    level="error",
                    data={"reason": why},
                )
            )
        if dom.memory_max or dom.cpu_quota:
            if self._systemd is None:
                self._systemd = user_systemd()
            command, note = limited(command, dom, self._systemd)
            if note:
                self.emit(
                    Event(
                        "limits.unavailable",
                        f"{dom.name}: {note}",
                        agent=dom.name,
                        level="warn",
                        data={"memory_max": dom.memory_max, "cpu_quota": dom.cpu_quota},
                    )
                )
        return command

    def _create(self, dom: Domain, layout: str, command: str) -> Pane:
        s = self.session
        folder = self.cli_dir()  # first: the sandbox settings protect it only if it exists
        cmd = pane_command(self._prepare(dom, command), folder)
        if layout == "tiled":
            windows = self.tmux.cmd("list-windows", "-t", f"={s}", "-F", "#{window_name}")
            if TILED_WINDOW in windows:
                pane_id = self.tmux.cmd(
                    "split-window",
                    "-d",
                    "-P",
                    "-F",
                    "#{pane_id}",
                    "-t",
                    f"={s}:={TILED_WINDOW}",
                    "-c",
                    dom.path,
                    *self._env(dom),
                    cmd,
                )[0]
                self.tmux.cmd("select-layout", "-t", f"={s}:={TILED_WINDOW}", "tiled")
            else:
                pane_id = self._new_window(TILED_WINDOW, dom, cmd)
        else:
            pane_id = self._new_window(dom.name, dom, cmd)
        self.tmux.cmd("set-option", "-p", "-t", pane_id, DOMAIN_OPTION, dom.name)
        self.tmux.cmd("set-option", "-p", "-t", pane_id, "remain-on-exit", "on")
        return self.tmux.panes()[dom.name]

    def _new_window(self, window: str, dom: Domain, cmd: str) -> str:
        s = self.session
        pane_id = self.tmux.cmd(
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            f"={s}:",
            "-n",
            window,
            "-c",
            dom.path,
            *self._env(dom),
            cmd,
        )[0]
        for opt in ("automatic-rename", "allow-rename"):
            self.tmux.cmd("set-option", "-w", "-t", pane_id, opt, "off")
        return pane_id

    def _respawn(self, pane: Pane, dom: Domain, command: str) -> None:
        folder = self.cli_dir()
        command = self._prepare(dom, command)
        self.tmux.cmd(
            "respawn-pane",
            "-k",
            "-t",
            pane.id,
            "-c",
            dom.path,
            *self._env(dom),
            pane_command(command, folder),
        )

    def down(self) -> dict:
        """Kill every agent's process tree, all at once, then the session (only then: tmux
        closing a pane sends SIGHUP, which Claude Code ignores, and the agent's children
        must not outlive it either)."""
        from comm_node_tui.panes.processes import kill_trees

        if not self.tmux.has_session():
            return {"session": self.session, "killed": []}
        live = {
            name: pane.pid for name, pane in self.tmux.panes().items() if pane.pid and not pane.dead
        }
        # One shared grace period for every agent that ignores TERM, not one each.
        results = kill_trees(list(live.values()))
        killed = list(live)
        left = sorted(p for r in results.values() for p in r["left"])
        self.tmux.cmd("kill-session", "-t", f"={self.session}")
        self.emit(
            Event(
                "tmux.down",
                f"session {self.session} ended ({len(killed)} agents stopped)"
                + (f"; pids {left} outlived SIGKILL" if left else ""),
                level="warn" if left else "info",
                data={"killed": killed, **({"left": left} if left else {})},
            )
        )
        return {"session": self.session, "killed": killed}

    # ---- the hand of god ----------------------------------------------------------------
    def attach(self, name: str) -> None:
        """Go to the agent's pane (panes/attach.py says how, from where this runs). Outside
        tmux this process becomes the tmux client."""
        from comm_node_tui.panes import attach

        pane = self.pane(name, alive=False)
        p = attach.plan(self.tmux, pane, name)
        attach.make_ready(self.tmux, p)
        if p.takes_terminal:
            env = dict(p.env) if p.env is not None else dict(os.environ)
            os.execvpe(p.command[0], list(p.command), env)
        attach.go(p)

    def inject(
        self,
        name: str,
        text: str,
        *,
        ready_timeout_s: float = 10.0,
        allow_command: bool = False,
        why: str = "operator",
        wait_s: float | None = None,
    ) -> dict:
        """Type and submit `text` under a receipt (protocol/receipts.py); NotDelivered
        (logged, with `receipt` set) when it cannot go.

        `why` says who typed (operator, nudge, kickoff): it is in the event. With `wait_s`,
        return only once the agent's own hook proved the turn started: a delivery with no
        turn after `wait_s` is typed once more when its box is empty again, else failed."""
        from comm_node_tui.protocol import receipts as rc

        path = rc.path_in(self.ws.paths.state)
        rid = rc.open_receipt(path, name, text, why)
        attempts = 2 if wait_s is not None else 1
        for attempt in range(1, attempts + 1):
            result = self._deliver(name, text, rid, ready_timeout_s, allow_command, why)
            result["receipt"] = rid
            if wait_s is None:
                return result
            seen = self._wait_started(path, rid, wait_s)
            if seen is not None and seen["state"] in rc.PROVED:
                # the engine's receipt watch logs the start (engine/nudges.py)
                result["started_s"] = _since(seen, "typed", "started")
                return result
            if seen is not None and seen["state"] == rc.FAILED:
                self._refused(name, text, why, rid, seen["reason"], typed=True, noted=True)
                raise _receipt_error(rid, seen["reason"])
            if (
                attempt < attempts
                and seen is not None
                and self._text_lost(name, seen)
                and self._box_empty(name)
            ):
                continue  # typed again: never into a box that still holds our text
            rc.append(path, rid, name, rc.FAILED, reason=rc.NOT_STARTED)
            self._refused(name, text, why, rid, rc.NOT_STARTED, typed=True, noted=True)
            raise _receipt_error(rid, rc.NOT_STARTED, wait_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _deliver(
        self, name: str, text: str, rid: str, ready_timeout_s: float, allow_command: bool, why: str
    ) -> dict:
        """One typing of a receipted delivery: typed, submitted (the box emptied)."""
        from comm_node_tui.panes.inject import NotDelivered, inject
        from comm_node_tui.protocol import receipts as rc

        path = rc.path_in(self.ws.paths.state)

        def step(state: str, reason: str | None) -> None:
            if state != "waiting":
                rc.append(path, rid, name, state)
                return
            word = receipt_reason(reason or "")
            rc.append(path, rid, name, "queued", reason=word)
            if word == rc.OPERATOR_TYPING:
                # the room says so: deliveries wait while someone else's text is in the box
                self.emit(
                    Event(
                        "agent.inject_waiting",
                        f"{name}: delivery waits: its input box holds text comm-node did not "
                        f"type (someone is typing) [{rid}]",
                        agent=name,
                        data={"receipt": rid, "reason": word, "by": why},
                    )
                )

        try:
            pane = self.pane(name)
        except CommNodeError as exc:
            self._refused(name, text, why, rid, rc.NOT_RUNNING, typed=False, sentence=str(exc))
            raise NotDelivered(f"not delivered: {exc}", rc.NOT_RUNNING) from None
        try:
            # One writer at a time per agent, across processes (the engine's nudges, the
            # room, `comm-node inject`): two that both saw an empty box would otherwise paste
            # into it together and submit one merged prompt (seen in the real soak).
            with typing_lock(self.ws, name, ready_timeout_s):
                self._acted(pane.id, "typed")
                result = inject(
                    self.tmux,
                    pane.id,
                    text,
                    cli=self.cli,
                    ready_timeout_s=ready_timeout_s,
                    allow_command=allow_command,
                    on_step=step,
                ).to_json()
        except NotDelivered as exc:
            word = receipt_reason(exc.reason)
            self._refused(name, text, why, rid, word, typed=exc.typed, sentence=str(exc))
            exc.receipt = rid
            raise
        self.emit(
            Event(
                "agent.injected",
                f"{name}: {len(text)} chars ({why}) submitted [{rid}]"
                + (" as text, not a command" if result["protected"] else ""),
                agent=name,
                data={**result, "chars": len(text), "by": why, "receipt": rid},
            )
        )
        return result

    def _refused(
        self,
        name: str,
        text: str,
        why: str,
        rid: str,
        reason: str,
        typed: bool,
        noted: bool = False,
        sentence: str = "",
    ) -> None:
        """The delivery failed: its receipt says why (unless already `noted`), and the log."""
        from comm_node_tui.protocol import receipts as rc

        if not noted:
            rc.append(rc.path_in(self.ws.paths.state), rid, name, rc.FAILED, reason=reason)
        self.emit(
            Event(
                "agent.inject_refused",
                f"{name}: {sentence or f'not delivered ({reason})'} [{rid}]",
                agent=name,
                level="warn",
                data={
                    "reason": reason,
                    "typed": typed,
                    "by": why,
                    "chars": len(text),
                    "receipt": rid,
                },
            )
        )

    def _wait_started(self, path: str, rid: str, wait_s: float) -> dict | None:
        """The receipt once the hook proved (or refused) the turn, or as it is at `wait_s`."""
        import time

        from comm_node_tui.protocol import receipts as rc

        deadline = time.monotonic() + wait_s
        while True:
            seen = rc.find(path, rid)
            if seen is None or seen["state"] in rc.PROVED or seen["state"] == rc.FAILED:
                return seen
            if time.monotonic() >= deadline:
                return seen
            time.sleep(0.05)

    def _text_lost(self, name: str, receipt: dict) -> bool:
        """Whether the typed text can be believed lost (Claude Code drops a paste now and
        then, e.g. as its input box first appears): its hooks are known to report, and none
        has written since the typing. An agent whose hooks never reported, or one that ran
        a turn the digest did not match (its hook wrote since), may well have taken the text:
        typing it again would deliver it twice."""
        from comm_node_tui.protocol.status import read_status

        path = self.ws.domains[name].paths.status
        typed = receipt.get("times", {}).get("typed")
        try:
            reports = read_status(path).get("updated_by") == "hook"
            written = os.stat(path).st_mtime
        except (OSError, ValueError):
            return False
        return reports and isinstance(typed, (int, float)) and written < typed

    def _box_empty(self, name: str) -> bool:
        """The agent is at rest with an empty input box (a retry may type there)."""
        try:
            pane = self.pane(name)
        except CommNodeError:
            return False
        screen = self.cli.read_screen(self.tmux.capture(pane.id))
        return screen.state == "idle" and screen.input is not None and not screen.input.strip()

    def _acted(self, pane_id: str, kind: str) -> None:
        """Note on the pane that comm-node just acted on it, and how: the engine then
        believes the screen at once over older hook words (an Escape or a "No" fires no
        hook), and after an interrupt an idle screen at once (nothing runs any more)."""
        import time

        from comm_node_tui.adapters.tmux import ACTED_OPTION

        value = f"{time.time():.3f} {kind}"
        self.tmux.cmd("set-option", "-p", "-t", pane_id, ACTED_OPTION, value)

    def answer(
        self, name: str, allow: bool, check: Callable[[], str | None] | None = None
    ) -> dict:
        """Answer the permission dialog on an agent's screen: allow once or deny, with the
        keys the agent CLI names. Only a permission dialog: trust and API-key dialogs are the
        operator's to read and answer in the pane itself. `check`, called after the screen
        is read and before a key is sent, returns why not to answer (the prompt is not the
        one the operator read), or None."""
        pane = self.pane(name)
        raw = self.tmux.capture(pane.id)
        screen = self.cli.read_screen(raw)
        if screen.state != "waiting":
            raise CommNodeError(f"{name} is not waiting for a permission answer ({screen.state})")
        if screen.dialog != "permission":
            raise CommNodeError(
                f"{name} shows a {screen.dialog} dialog, not a permission prompt: "
                f"read it and answer in the pane (`comm-node attach {name}`)"
            )
        try:
            keys = self.cli.answer_keys(raw, allow)
        except Unsafe as exc:
            raise CommNodeError(
                f"{name}: {exc}; answer in the pane (`comm-node attach {name}`)"
            ) from None
        why = check() if check is not None else None
        if why:
            raise CommNodeError(f"{name}: {why}; nothing answered")
        self._acted(pane.id, "answer")
        self.tmux.cmd("send-keys", "-t", pane.id, *keys)
        verb = "approved" if allow else "denied"
        self.emit(
            Event(
                f"agent.{verb}",
                f"{name}: permission {verb} by the operator",
                agent=name,
                data={"dialog": screen.dialog},
            )
        )
        return {"domain": name, "answer": verb}

    def interrupt(self, name: str) -> None:
        pane = self.pane(name)
        keys = self.cli.interrupt_keys
        self._acted(pane.id, "interrupt")
        self.tmux.cmd("send-keys", "-t", pane.id, *keys)
        self.emit(Event("agent.interrupted", f"{name}: {' '.join(keys)} sent", agent=name))

    def kill(self, name: str, grace_s: float = 3.0) -> dict:
        from comm_node_tui.panes.processes import kill_tree

        pane = self.pane(name, alive=False)
        result = {"pids": [], "killed": [], "left": []}
        if pane.pid and not pane.dead:
            result = kill_tree(pane.pid, grace_s)
        layout_window = pane.window == TILED_WINDOW
        self.tmux.cmd("kill-pane" if layout_window else "kill-window", "-t", pane.id)
        released = self.coord.release(name, None, why="released: agent killed")
        self.coord.unclaim_holder(name, "was killed")
        self.emit(
            Event(
                "agent.killed",
                f"{name}: killed (pids {result['pids']}; "
                f"{len(result['killed'])} needed SIGKILL; {len(released)} locks "
                "released)",
                agent=name,
                level="warn",
                data=result,
            )
        )
        return result

    def restart(self, name: str, *, fresh: bool = False) -> dict:
        """Stop the agent and start it again in its pane, in its last conversation unless
        `fresh` (start_plan says when it cannot). The plan is made before the kill, so a
        command that cannot be made leaves the agent running."""
        from comm_node_tui.panes.processes import kill_tree

        dom = self.ws.domain(name)
        panes = self.tmux.panes() if self.tmux.has_session() else {}
        pane = panes.get(name)
        if pane is None:
            return self.up([name], fresh=fresh)[0]
        plan = self.start_plan(dom, fresh)
        old = pane.pid
        if pane.pid and not pane.dead:
            kill_tree(pane.pid)
        self._respawn(pane, dom, plan["command"])
        new = self.tmux.panes()[name]
        conversation = {"session": plan["session"], "fresh": plan["fresh"]}
        self.emit(
            Event(
                "agent.restarted",
                f"{name}: restarted (pid {old} -> {new.pid}), {conversation_words(plan)}",
                agent=name,
                data={"old_pid": old, "pid": new.pid} | conversation,
            )
        )
        return {"domain": name, "pane": new.id, "pid": new.pid, "action": "restarted"} | (
            conversation
        )

    def peek(self, name: str, lines: int = 0, ansi: bool = False) -> str:
        pane = self.pane(name, alive=False)
        return self.tmux.capture(pane.id, lines=lines, ansi=ansi)

    def states(self) -> dict[str, dict]:
        """Per domain: pane id, pid, dead, and the screen's state (for the engine).

        A pane is captured again only when tmux saw activity in it since the last capture
        (`window_activity`, whole seconds: a capture in the same second is not trusted).
        """
        import time

        out = {}
        for name, pane in self.tmux.panes().items():
            cached = self._screens.get(pane.id)
            if pane.dead:
                screen = ""
            elif cached and cached[0] == pane.activity and cached[1] > pane.activity + 1:
                screen = cached[2]
            else:
                screen = self.tmux.capture(pane.id)
                self._screens[pane.id] = (pane.activity, time.time(), screen)
                self.captures += 1
            out[name] = {
                "pane": pane.id,
                "pid": pane.pid,
                "dead": pane.dead,
                "exit_status": pane.dead_status,
                "activity": pane.activity,
                "acted": pane.acted,
                "acted_kind": pane.acted_kind,
                "screen_state": "dead" if pane.dead else self.cli.read_screen(screen).state,
                "screen": screen,
            }
        return out


@contextlib.contextmanager
def typing_lock(ws: Workspace, name: str, timeout_s: float):
    """Hold the agent's typing lock (a flock on .comm-node/typing/NAME.lock) for a whole
    delivery; NotDelivered when another delivery still holds it after `timeout_s`."""
    from comm_node_tui.panes.inject import POLL_S, NotDelivered
    from comm_node_tui.protocol.fileio import exclusive_flock

    folder = os.path.join(ws.paths.state, "typing")
    os.makedirs(folder, mode=0o700, exist_ok=True)

    def held() -> NotDelivered:
        return NotDelivered("not delivered: another delivery to this agent is being typed", "busy")

    with exclusive_flock(os.path.join(folder, f"{name}.lock"), timeout_s, held, POLL_S):
        yield


def receipt_reason(reason: str) -> str:
    """A typist's refusal as the receipt's word (protocol/receipts.py)."""
    from comm_node_tui.protocol import receipts as rc

    return {
        "occupied": rc.OPERATOR_TYPING,
        "exited": rc.NOT_RUNNING,
        "unsubmitted": rc.NOT_STARTED,
    }.get(reason, reason)


def _since(rec: dict, first: str, then: str) -> float:
    times = rec.get("times") or {}
    a, b = times.get(first), times.get(then)
    return round(b - a, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else 0.0


def _receipt_error(rid: str, reason: str, wait_s: float | None = None):
    from comm_node_tui.panes.inject import NotDelivered

    sentence = {
        "not_started": f"typed and submitted, but the agent's hook saw no turn start in {wait_s}s",
        "blocked": "the agent's hook refused the prompt (is it paused?)",
    }.get(reason, reason)
    exc = NotDelivered(f"not delivered: {sentence}", reason, typed=True)
    exc.receipt = rid
    return exc


def conversation_words(plan: dict) -> str:
    """How a sentence says what a start did with the conversation: "resuming session
    1b2c3d4e…" or "fresh (why)"."""
    from comm_node_tui.coordination.sessions import short

    if plan.get("session"):
        return f"resuming session {short(plan['session'])}"
    return f"fresh ({plan['fresh']})" if plan.get("fresh") else "fresh"


def tmux_ready() -> bool:
    return shutil.which("tmux") is not None


__all__ = ["AgentPanes", "TmuxError", "session_for", "socket_for"]
