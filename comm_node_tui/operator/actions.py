"""What the operator does to agents and to the shared state, one function per action.

Each does its IO (tmux through panes/, files through coordination/) and returns one line
for the room to show, or raises CommNodeError with one line. The control room calls them in
workers and turns a failure into a notice and an `operator.failed` event in one place
(tui/app.py, `on_worker_state_changed`); nothing here knows about Textual, so another front
end (a CLI, a web view) gets the same behaviour by calling the same functions.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, ParamSpec

from comm_node_tui.coordination import operator as ops
from comm_node_tui.coordination.pause import Pause
from comm_node_tui.errors import CommNodeError, ConflictError
from comm_node_tui.protocol.events import Event
from comm_node_tui.workspace.model import Workspace

if TYPE_CHECKING:
    from comm_node_tui.cluster.ops import RemoteOps
    from comm_node_tui.coordination.coordinator import Coordinator
    from comm_node_tui.integration.diff import FileChange, Patch
    from comm_node_tui.integration.gitwork import Work
    from comm_node_tui.panes.manager import AgentPanes

MAX_LINE = 300
P = ParamSpec("P")


def one_line(text: object) -> str:
    """The first line of `text`, cut to MAX_LINE characters."""
    s = str(text).strip()
    first = s.splitlines()[0] if s else ""
    more = first != s
    if len(first) > MAX_LINE - 1 or more:
        first = first[: MAX_LINE - 1] + "…"
    return first


def answers_in_one_line(fn: Callable[P, str]) -> Callable[P, str]:
    """A result of one line, or a CommNodeError of one line whatever went wrong below
    (libtmux, the OS, a bug): the room shows it in a notice, and a traceback is no notice."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> str:
        try:
            return one_line(fn(*args, **kwargs))
        except CommNodeError as exc:
            if "\n" in str(exc) or len(str(exc)) > MAX_LINE:
                raise CommNodeError(one_line(exc)) from exc
            raise
        except Exception as exc:
            raise CommNodeError(one_line(exc) or type(exc).__name__) from exc

    return run


class OperatorActions:
    """The interventions, over the workspace and the coordinator in use (the engine's once
    it runs in-process: `coord` is asked each time).

    With [cluster], an action on an agent another machine runs is a request to that
    machine's engine, which does it with this same service (operator/remote.py) and answers
    in one line: the room and the CLI need not know where an agent runs. `local_only`: the
    owner's own service, which never sends a request on."""

    def __init__(
        self, ws: Workspace, coord: Callable[[], Coordinator], *, local_only: bool = False
    ) -> None:
        self.ws = ws
        self._coord = coord
        self._panes: AgentPanes | None = None
        self._remote: RemoteOps | None = None
        self._remote_lock = threading.Lock()
        self._panes_lock = threading.Lock()
        self._elsewhere: frozenset[str] = frozenset()
        if ws.settings.cluster.enabled and not local_only:
            from comm_node_tui.cluster.relay import local_domains

            self._elsewhere = frozenset(ws.domains) - local_domains(ws)

    def runs_elsewhere(self, name: str) -> bool:
        """Whether another machine's engine runs this agent ([cluster])."""
        return name in self._elsewhere

    def remote(self) -> RemoteOps:
        # The room's preview worker asks for another machine's pane while an action's worker
        # may send a request: one RemoteOps (one NATS client) for both.
        with self._remote_lock:
            if self._remote is None:
                from comm_node_tui.cluster.ops import RemoteOps

                self._remote = RemoteOps(self.ws, lambda ev: self.coord.emit(ev))
            return self._remote

    def _ask(self, action: str, name: str, **args: object) -> str:
        """The action, done by the engine that owns the agent; its one line."""
        return self.remote().ask(action, name, {k: v for k, v in args.items() if v is not None})

    @property
    def coord(self) -> Coordinator:
        return self._coord()

    def panes(self) -> AgentPanes:
        """One tmux client for the room (making one asks tmux for its version)."""
        from comm_node_tui.panes.manager import AgentPanes

        # The owner's request threads ([cluster]: a peek beside an inject) ask at once: one
        # client, not one each (its state is only this; tmux commands are processes of their
        # own, and typing into one agent is serialised by its typing lock).
        with self._panes_lock:
            if self._panes is None:
                self._panes = AgentPanes(self.ws, self.coord)
            return self._panes

    # ---- one agent --------------------------------------------------------------------------
    @answers_in_one_line
    def inject(self, name: str, text: str) -> str:
        """Into the agent's inbox as a message from the operator, and typed into its pane.
        Refused while the agent is paused: its hook would block the prompt anyway."""
        if self.runs_elsewhere(name):
            return self._ask("inject", name, text=text)
        stop = ops.pause_state(self.coord)
        if stop.covers(name):
            raise ConflictError(f"{name} is paused: nothing is typed into it; resume it first")
        ident = ops.message_to_agent(self.coord, name, text)
        out = self.panes().inject(name, text)
        # submitted, not yet proved: the log shows "turn started" when the agent's hook does
        return (
            f"typed ({out['method']}) and delivered as {ident}; submitted [{out['receipt']}], "
            "the log says when its turn starts"
        )

    @answers_in_one_line
    def answer(self, name: str, text: str, reply_to: str | None = None) -> str:
        """A message from the operator into the agent's inbox, as a reply to `reply_to` (a
        message the agent sent the operator: marked read, it no longer waits)."""
        if self.runs_elsewhere(name):
            return self._ask("answer", name, text=text, reply_to=reply_to)
        ident = ops.message_to_agent(self.coord, name, text, reply_to=reply_to)
        if reply_to:
            from comm_node_tui.protocol.mailbox import find_in_inbox, mark_read

            mailbox = self.ws.paths.operator
            try:
                path, already = find_in_inbox(mailbox, reply_to)
            except LookupError:
                return f"delivered as {ident} ({reply_to} is no longer in the operator's inbox)"
            if not already:
                mark_read(mailbox, path)
        return f"delivered as {ident}"

    @answers_in_one_line
    def interrupt(self, name: str) -> str:
        if self.runs_elsewhere(name):
            return self._ask("interrupt", name)
        self.panes().interrupt(name)
        return "Escape sent"

    @answers_in_one_line
    def approve(self, name: str, seen: str | None = None) -> str:
        """Allow once; `seen`: the key of the prompt the operator read (engine/needs.py),
        checked by the engine that owns the agent when another machine runs it."""
        if self.runs_elsewhere(name):
            return self._ask("approve", name, seen=seen)
        return self.panes().answer(name, allow=True, check=self._same_prompt(name, seen))["answer"]

    @answers_in_one_line
    def deny(self, name: str, seen: str | None = None) -> str:
        if self.runs_elsewhere(name):
            return self._ask("deny", name, seen=seen)
        return self.panes().answer(name, allow=False, check=self._same_prompt(name, seen))["answer"]

    def _same_prompt(self, name: str, seen: str | None) -> Callable[[], str | None] | None:
        """A check that the prompt on screen is still the one the operator read. Read after
        the screen: a new prompt's hooks report its tool before its dialog shows, so a
        dialog that took the place of the one read always comes with a new key."""
        if seen is None:
            return None
        from comm_node_tui.engine.needs import permission_key
        from comm_node_tui.protocol.status import read_status

        def check() -> str | None:
            now = permission_key(name, read_status(self.ws.domains[name].paths.status))
            return None if now == seen else "the prompt changed since you read it: look again"

        return check

    @answers_in_one_line
    def kill(self, name: str) -> str:
        if self.runs_elsewhere(name):
            return self._ask("kill", name)
        out = self.panes().kill(name)
        return f"killed (pids {out['pids']}; {len(out['killed'])} needed SIGKILL)"

    @answers_in_one_line
    def restart(self, name: str, fresh: bool = False) -> str:
        """Restart the agent in its last conversation, or in a new one (`fresh`)."""
        if self.runs_elsewhere(name):
            return self._ask("restart", name, fresh=fresh)
        from comm_node_tui.panes.manager import conversation_words

        out = self.panes().restart(name, fresh=fresh)
        return f"{out['action']} (pid {out['pid']}), {conversation_words(out)}"

    @answers_in_one_line
    def handoff(self, name: str) -> str:
        """Ask the agent for its hand-off note, wait for it, then clear its context
        (operator/handoff.py); runs for as long as the agent takes to write it."""
        from comm_node_tui.operator.handoff import hand_off

        out = hand_off(self.panes(), name)
        note = os.path.relpath(out["note"], self.ws.root)
        return f"hand-off note written to {note}; context cleared"

    @answers_in_one_line
    def grant_budget(self, name: str, tokens: int) -> str:
        if self.runs_elsewhere(name):
            return self._ask("grant_budget", name, tokens=tokens)
        from comm_node_tui.coordination.coordinator import grant_budget

        grant_budget(self.coord, name, tokens, "granted in the control room")
        return f"{tokens:+,} tokens"

    @answers_in_one_line
    def assign_task(self, tid: str, name: str) -> str:
        from comm_node_tui.coordination.beads_writeback import write_back_task

        out = ops.assign_task(self.coord, tid, name)
        previous = out["previous"]
        said = "assigned" + (f" (taken from {previous})" if previous and previous != name else "")
        # as the agent's own claim is: the overlay decided, `bd` follows (or one line says not)
        problem = write_back_task(self.coord, "claim", tid, assignee=name)
        return said + (f"; {problem}" if problem else "")

    @answers_in_one_line
    def publish_artifact(self, name: str, path: str) -> str:
        """A file of the agent's domain (a relative path is taken from the domain)."""
        dom = self.coord.ws.domain(name)
        full = path if os.path.isabs(path) else os.path.join(dom.path, path)
        return f"published as {self.coord.publish(dom, full, None)['name']}"

    def peek(self, name: str, lines: int = 0, ansi: bool = False) -> str:
        """The agent's pane as text (the preview; `comm-node peek`). Another machine's agent:
        its engine captures the pane and sends the text back (read-only; text from an agent,
        which the caller renders as it renders a local pane: never as markup)."""
        if self.runs_elsewhere(name):
            return self._ask("peek", name, lines=lines or None, ansi=ansi or None)
        return self.panes().peek(name, lines=lines, ansi=ansi)

    def where(self, name: str) -> str | None:
        """([cluster]) "machine m2" when another machine runs `name` (as this machine's
        engine last heard; "another machine" when it has not); None: it runs here."""
        if not self.runs_elsewhere(name):
            return None
        from comm_node_tui.cluster.view import machine_of

        return machine_of(self.ws, name)

    def attach(self, name: str, suspend: Callable[[], AbstractContextManager]) -> str:
        """Go to the agent's pane (panes/attach.py: a client in this terminal, a switch
        inside the agents' own tmux server, a popup inside another); the room gives the
        terminal (`suspend`) to a client that needs it and comes back when the operator
        does. Runs in the UI's thread: it owns the terminal."""
        from comm_node_tui.panes import attach

        elsewhere = self.where(name)
        if elsewhere is not None:  # a terminal reaches only this machine's tmux
            raise CommNodeError(
                f"{name} runs on {elsewhere}: attach to it there (the preview and "
                f"`comm-node peek {name}` show its pane here)"
            )
        try:
            panes = self.panes()
            pane = panes.pane(name, alive=False)
            p = attach.plan(panes.tmux, pane, name)
            attach.make_ready(panes.tmux, p)
            if p.takes_terminal:
                with suspend():
                    attach.go(p)
            else:
                attach.go(p)
        except CommNodeError:
            raise
        except Exception as exc:
            raise CommNodeError(one_line(exc)) from exc
        if p.how == "switch":
            return f"switched to {name}'s pane ({p.back} comes back)"
        return f"back from {name}'s pane"

    # ---- review and the merge queue (integration/) ----------------------------------------
    def review_files(self, name: str) -> tuple[Work, list[FileChange], int]:
        """Where the domain's work is and the files it changed (git, blocking: a worker);
        CommNodeError in one line when git cannot say."""
        from comm_node_tui.integration.diff import changed_files
        from comm_node_tui.integration.gitwork import find_work

        if self.runs_elsewhere(name):  # its folder's work is on its machine: read there
            from comm_node_tui.operator.remote import remote_review_files

            return remote_review_files(self.remote().read("review_files", name), name)
        try:
            work = find_work(self.ws, self.ws.domain(name))
            files, total = changed_files(work)
        except CommNodeError:
            raise
        except Exception as exc:
            raise CommNodeError(one_line(exc) or type(exc).__name__) from exc
        return work, files, total

    def review_patch(self, work: Work, change: FileChange) -> Patch:
        """One file's patch, or a note saying why not (binary, too large)."""
        from comm_node_tui.integration.diff import patch

        if self.runs_elsewhere(work.domain):
            from comm_node_tui.operator.remote import remote_patch

            data = self.remote().read("review_patch", work.domain, {"path": change.path})
            return remote_patch(data, change)
        return patch(work, change)

    @answers_in_one_line
    def review_comment(
        self, name: str, path: str, line: int | None, hunk: str, quote: str, text: str
    ) -> str:
        """A review comment into the agent's inbox (the operator's message, as `answer`
        sends one): it names the file and the line and quotes the hunk's header and the line
        commented on, so the agent can find the place without the room."""
        where = f"{path}, line {line}" if line is not None else path
        body = [f"Review comment on {where}:", ""]
        if hunk:
            body.append(f"> {hunk}")
        if quote and quote != hunk:
            body.append(f"> {quote}")
        body += ["", text.strip(), ""]
        if self.runs_elsewhere(name):  # through its engine, as an inject (typed, in its inbox)
            return self._ask("inject", name, text="\n".join(body).strip())
        ident = ops.message_to_agent(self.coord, name, "\n".join(body), msg_type="review")
        self.coord.emit(
            Event(
                "review.comment",
                f"operator -> {name}: comment on {where}"[:200],
                agent=name,
                data={"id": ident, "path": path, "line": line},
            )
        )
        return f"comment on {where} delivered as {ident}"

    @answers_in_one_line
    def queue_merge(self, name: str) -> str:
        """The domain's branch into the merge queue (the engine takes it). Another
        machine's domain is refused: its branch is in that machine's clone, not in the
        repository this machine's queue merges into (docs/cluster.md)."""
        from comm_node_tui.integration.queue import MergeQueue

        elsewhere = self.where(name)
        if elsewhere is not None:
            # the room's notice, and operator.failed in the log (ControlRoom's act worker)
            node = elsewhere.removeprefix("machine ") if elsewhere.startswith("machine ") else ""
            raise CommNodeError(
                f"{name} runs on {elsewhere}: queue its merge there "
                f"(`comm-node merge {name}` on {node or 'that machine'})"
            )
        entry = MergeQueue(self.coord).enqueue(name, by="operator")
        note = "; its uncommitted changes are not merged" if entry.get("uncommitted") else ""
        if entry.get("already"):
            return f"{entry['branch']} is already queued as {entry['id']}{note}"
        return f"{entry['branch']} queued as {entry['id']}; the engine merges it{note}"

    # ---- everyone ---------------------------------------------------------------------------
    @answers_in_one_line
    def pause(self, names: list[str] | None = None) -> str:
        """Stop every agent (`names` None) or these: the pause file, then Escape into each
        stopped agent's pane so what it runs now ends too (the hooks refuse the rest). With
        [cluster], the other machines' engines pause their agents (every one, or those
        named), each on its own machine's pause file."""
        here, elsewhere = self._split(names)
        line = self._pause_here(here) if here != [] else ""
        return self._joined(line, self._fan_out("pause", names, elsewhere))

    def _pause_here(self, names: list[str] | None) -> str:
        coord = self.coord
        ops.pause(coord, names)
        who = "every agent" if names is None else ", ".join(names)
        stopped = []
        try:
            panes = self.panes()
            for name, pane in panes.tmux.panes().items():
                if not pane.dead and (names is None or name in names):
                    panes.interrupt(name)
                    stopped.append(name)
        except Exception as exc:  # no tmux: the pause still holds in the hooks and claims
            return f"paused {who} (no agents interrupted: {exc})"
        return f"paused {who}; interrupted {', '.join(stopped) or 'no agents'}"

    @answers_in_one_line
    def resume(self, names: list[str] | None = None) -> str:
        """End every pause (`names` None) or these agents' pauses (on their machines)."""
        here, elsewhere = self._split(names)
        line = ""
        if here != []:
            left = ops.resume(self.coord, here)
            who = "every agent" if here is None else ", ".join(here)
            still = f"; still paused: {', '.join(left.domains)}" if left.domains else ""
            line = f"resumed {who}{still}"
        return self._joined(line, self._fan_out("resume", names, elsewhere))

    def _split(self, names: list[str] | None) -> tuple[list[str] | None, list[str]]:
        """(the names run here, or None for everyone; the names another machine runs)."""
        if names is None:
            return None, []
        return (
            [n for n in names if not self.runs_elsewhere(n)],
            [n for n in names if self.runs_elsewhere(n)],
        )

    def _fan_out(self, action: str, names: list[str] | None, elsewhere: list[str]) -> str:
        """pause/resume on the other machines: every engine (names None) or the owners of
        the names; each answers in its line, one that is silent is named."""
        if not self._elsewhere or (names is not None and not elsewhere):
            return ""
        from comm_node_tui.cluster.ops import OwnerSilent

        remote = self.remote()
        asks: dict[str, list[str] | None] = {}
        if names is None:
            asks = {node: None for node in remote.nodes() if node != remote.me}
        else:
            for name in elsewhere:
                owned = asks.setdefault(remote.owner(name), [])
                assert owned is not None
                owned.append(name)
        out = []
        for node, which in sorted(asks.items()):
            try:
                said = remote.ask(action, (which or ["*"])[0], {"names": which}, node=node)
            except OwnerSilent as exc:
                said = str(exc)
            except CommNodeError as exc:
                said = f"refused: {exc}"
            out.append(f"{node}: {said}")
        return "; ".join(out)

    @staticmethod
    def _joined(*parts: str) -> str:
        return "; ".join(p for p in parts if p) or "nothing to do"

    def pause_state(self) -> Pause:
        return ops.pause_state(self.coord)

    @answers_in_one_line
    def release_lock(self, holder: str, pattern: str) -> str:
        if self.runs_elsewhere(holder):
            return self._ask("release_lock", holder, pattern=pattern)
        self.coord.release(holder, [pattern], why="released by the operator")
        return f"released {holder}'s lock"

    def failed(self, what: str, error: BaseException) -> None:
        """An action that failed, in the event log too (the notice alone goes away)."""
        self.coord.emit(
            Event(
                "operator.failed",
                f"{what}: {one_line(error) or type(error).__name__}",
                level="warn",
                data={"action": what, "error": type(error).__name__},
            )
        )
