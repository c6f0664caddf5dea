"""The kickoff meeting (`comm-node kickoff`, the wizard's last step, the demo): start every
agent in tmux, wait for each to register (its first heartbeat after the meeting began: the
SessionStart hook, or any `comm-node` call of the agent), restart the ones that do not and
wait again, then give every registered agent its START message and first prompt. A domain
that never registers is reported; the others still start."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.status import read_status
from comm_node_tui.workspace.model import Domain, Workspace

FIRST_PROMPT = (
    "comm-node kickoff: you are the {name} agent of {project}. Your START message is in your "
    "inbox: run `comm-node inbox`, then follow the loop in {instructions} (`comm-node task "
    "ready`)."
)


def start_message(ws: Workspace, dom: Domain) -> str:
    peers = [p for p in ws.domains.values() if p.name != dom.name]
    lines = [
        f"START: the kickoff of {ws.project}.",
        "",
        f"You are the {dom.name} agent. Your role: {dom.role or '(none given)'}",
        f"Your files: {', '.join(dom.scope)} (relative to your directory).",
        "",
        "Your peers (reach them with `comm-node send --to NAME`):",
        *(f"- {p.name}: {p.role or 'no role given'}" for p in peers),
        "",
        "First: `comm-node task ready`, claim the first task, lock its files, work, publish, "
        "close it, and ask again. Questions to a peer or to `operator` go through "
        "`comm-node send`.",
    ]
    return "\n".join(lines) + "\n"


def _heartbeat(dom: Domain) -> float | None:
    try:
        text = read_status(dom.paths.status).get("last_heartbeat")
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, TypeError):
        return None


class Meeting:
    def __init__(
        self,
        ws: Workspace,
        *,
        panes=None,
        coord=None,
        timeout_s: float = 60.0,
        retries: int = 1,
        on_progress: Callable[[dict], None] | None = None,
        clock=time.time,
    ) -> None:
        from comm_node_tui.adapters.agent_cli import agent_cli_for
        from comm_node_tui.coordination.coordinator import Coordinator
        from comm_node_tui.panes.manager import AgentPanes

        self.ws = ws
        self.cli = agent_cli_for(ws)
        self.coord = coord or Coordinator(ws)
        self.panes = panes or AgentPanes(ws, self.coord)
        self.timeout_s = timeout_s
        self.retries = retries
        self.on_progress = on_progress
        self.clock = clock
        self.registered: dict[str, float] = {}
        self.failed: dict[str, str] = {}

    def progress(self, note: str = "") -> None:
        if self.on_progress:
            self.on_progress(
                {
                    "registered": sorted(self.registered),
                    "failed": dict(self.failed),
                    "total": len(self.ws.domains),
                    "note": note,
                }
            )

    def _wait(self, names: list[str], since: float) -> list[str]:
        """Wait up to the timeout for `names` to register; those that did not."""
        waiting = list(names)
        deadline = time.monotonic() + self.timeout_s
        next_look = time.monotonic() + 1.0
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                beat = _heartbeat(self.ws.domains[name])
                if beat is not None and beat >= since - 1.0:
                    waiting.remove(name)
                    self.registered[name] = beat - since
                    self.coord.emit(
                        Event(
                            "agent.registered",
                            f"{name} registered ({len(self.registered)}/{len(self.ws.domains)})",
                            agent=name,
                        )
                    )
                    self.progress(f"{name} registered")
            look = time.monotonic() >= next_look
            if look:
                next_look = time.monotonic() + 1.0  # a screen read per agent per second
            for name in list(waiting) if look else []:
                dialog = self._dialog(name)
                if dialog:
                    # A first-run dialog waits for a person, and a restart would only show it
                    # again: reported at once, never answered by comm-node.
                    waiting.remove(name)
                    self.failed[name] = self.cli.dialog_hint(dialog, name)
            if waiting:
                time.sleep(0.1)
        return waiting

    def _dialog(self, name: str) -> str | None:
        """The dialog an agent's screen shows instead of its prompt, if any."""
        try:
            screen = self.cli.read_screen(self.panes.peek(name))
        except Exception:
            return None
        return screen.dialog if screen.state == "waiting" else None

    def run(self, *, start: bool = True, inject: bool = True) -> dict:
        from comm_node_tui.integration.coordinator import held_back

        # the integration coordinator starts later, when every other domain is done
        held = held_back(self.ws)
        names = [n for n in self.ws.domains if n not in held]
        self.coord.emit(
            Event("kickoff.started", f"kickoff of {self.ws.project}: {len(names)} agents")
        )
        since = self.clock()
        if start:
            self.panes.up(names if held else None)
        self.progress("agents starting")
        missing = self._wait(names, since)
        for attempt in range(self.retries):
            if not missing:
                break
            for name in missing:
                self.coord.emit(
                    Event(
                        "kickoff.retry",
                        f"{name} did not register in {self.timeout_s:g} s; restarting it "
                        f"(retry {attempt + 1}/{self.retries})",
                        agent=name,
                        level="warn",
                    )
                )
                try:
                    self.panes.restart(name)
                except Exception as exc:  # reported below with the others
                    self.failed[name] = str(exc)
            self.progress("retrying")
            since = self.clock()
            missing = self._wait(missing, since)
        missing += [n for n in self.failed if n not in missing and n not in self.registered]
        for name in missing:
            reason = self.failed.get(name) or f"no heartbeat in {self.timeout_s:g} s"
            self.failed[name] = reason
            self.coord.emit(
                Event(
                    "kickoff.unregistered",
                    f"{name} never registered ({reason}); the others start without it",
                    agent=name,
                    level="error",
                    data={"alert": True},
                )
            )
        from comm_node_tui.coordination.operator import message_to_agent
        from comm_node_tui.coordination.pause import read_pause

        started, held = [], []
        pause = read_pause(self.ws.paths.state)
        for name in names:
            if name in self.failed:
                continue
            dom = self.ws.domains[name]
            message_to_agent(
                self.coord, name, start_message(self.ws, dom), msg_type="start", priority="high"
            )
            if inject and pause.covers(name):
                # Paused: nothing is typed into it (its hook would refuse the prompt anyway).
                # The start message waits in its inbox; after `resume` the engine's mail
                # nudge brings the agent to it.
                held.append(name)
                continue
            if inject:
                try:
                    prompt = FIRST_PROMPT.format(
                        name=name, project=self.ws.project, instructions=self.cli.instructions_file
                    )
                    self.panes.inject(name, prompt, why="kickoff")  # receipted as such
                except Exception as exc:
                    self.failed[name] = f"first prompt not delivered: {exc}"
                    continue
            started.append(name)
        self.progress("done")
        summary = {
            "registered": sorted(self.registered),
            "started": started,
            "held": held,  # paused: the first prompt waits for `resume`
            "failed": self.failed,
            "seconds_to_register": {k: round(v, 2) for k, v in self.registered.items()},
        }
        self.coord.emit(
            Event(
                "kickoff.done",
                f"kickoff: {len(started)}/{len(names)} agents started"
                + (f"; held while paused: {', '.join(held)}" if held else "")
                + (f"; failed: {', '.join(sorted(self.failed))}" if self.failed else ""),
                level="warn" if self.failed else "info",
                data=summary,
            )
        )
        return summary
