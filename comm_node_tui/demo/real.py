"""The demo on real Claude Code: the pinned `claude`, offline, against the scripted model
playing the demo plan (demo/real_plan.py), and the operator's stand-in that answers its
permission prompts and restarts an agent.

Everything stays inside the demo's workspace: the model listens on 127.0.0.1 (a free port),
Claude Code's HOME and CLAUDE_CONFIG_DIR are `.comm-node/demo/home` (never ~/.claude), and
each pane runs a small wrapper that exports that environment (a tmux server passes its own
environment to new panes, not the caller's: real-claude-code.md).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections import Counter

from comm_node_tui.demo import real_plan
from comm_node_tui.protocol.events import Event

# Which `claude` the demo runs instead of the pinned build (a path); tests point it at a
# missing file to see the fallback.
CLAUDE_ENV = "COMM_NODE_DEMO_CLAUDE"
# Why `./run` could not install Claude Code (scripts/install-claude-code.sh's last line).
INSTALL_ERROR_ENV = "COMM_NODE_DEMO_INSTALL_ERROR"
RESTART_WORDS = (
    "The operator restarted you. Run `comm-node inbox` and `comm-node task ready`, then carry on."
)


def find_claude() -> tuple[str | None, str]:
    """(the `claude` to run, "") or (None, why there is none)."""
    from comm_node_tui.claude_code import TESTED_VERSION, installed_binary

    chosen = os.environ.get(CLAUDE_ENV)
    if chosen:
        if os.path.isfile(chosen) and os.access(chosen, os.X_OK):
            return chosen, ""
        return None, f"${CLAUDE_ENV} names {chosen}, which is not an executable file"
    path = installed_binary()
    if path is None and os.environ.get(INSTALL_ERROR_ENV):
        return None, os.environ[INSTALL_ERROR_ENV].strip().splitlines()[-1]
    if path is None:
        return None, (
            f"Claude Code {TESTED_VERSION} is not installed (scripts/install-claude-code.sh "
            "installs it with npm; ./run does when npm is there)"
        )
    return path, ""


def demo_dir(root: str) -> str:
    return os.path.join(root, ".comm-node", "demo")


def wrapper_path(root: str) -> str:
    return os.path.join(demo_dir(root), "claude")


def config_dir(root: str) -> str:
    return os.path.join(demo_dir(root), "home", ".claude")


def agent_command(root: str) -> str:
    # CLAUDE_CONFIG_DIR in the command as well as in the wrapper: comm-node reads it there to
    # find the transcripts (token use) before any hook has named them.
    config, wrapper = shlex.quote(config_dir(root)), shlex.quote(wrapper_path(root))
    return f"env CLAUDE_CONFIG_DIR={config} {wrapper}"


def settings(speed: float, claude: str) -> dict:
    stuck = max(4.0, round(8.0 / speed, 1))
    return {
        "agents": "claude",
        "claude": claude,
        "speed": speed,
        "stuck_after_s": stuck,
        # A silent reply past "stuck_after_s": detected, then recovered. Claude Code's screen
        # still changes for about 17 s after a prompt (a tip comes and goes, the spinner's
        # clock appears), so the silence starts counting after that.
        "stall_s": round(17 + 2 * stuck, 1),
        "stall": [real_plan.STALL_TASK],
        "restart": real_plan.RESTART_DOMAIN,
        "approve_after_s": round(1.0 / speed, 2),  # the operator reads the dialog first
        "domains": [d[0] for d in real_plan.DOMAINS],
    }


class RealAgents:
    """The scripted model and Claude Code's private home, for one run of the demo."""

    def __init__(self, ws, demo: dict) -> None:
        self.ws = ws
        self.demo = demo
        self.model = None
        self.log_path = os.path.join(demo_dir(ws.root), "model-log.jsonl")

    def start(self) -> None:
        from comm_node_tui.model import ScriptedModel, parse_script, prepare_claude_home
        from comm_node_tui.protocol.fileio import atomic_write

        root = self.ws.root
        os.makedirs(demo_dir(root), mode=0o700, exist_ok=True)
        text = real_plan.script_toml(root, self.demo["stall_s"])
        script_path = os.path.join(demo_dir(root), "model-script.toml")
        atomic_write(script_path, text)  # for whoever wants to read what the model plays
        self.model = ScriptedModel(parse_script(text, script_path), log_path=self.log_path)
        base_url = self.model.start()
        # Trust the workspace's root and each domain folder (trust recorded for a parent
        # does not cover a child that is its own git repository: real-claude-code.md).
        trust = [root, *(d.path for d in self.ws.domains.values())]
        home = prepare_claude_home(os.path.dirname(config_dir(root)), base_url, trust=trust)
        tmp = os.path.join(demo_dir(root), "tmp")  # Claude Code's task output stays here
        os.makedirs(tmp, exist_ok=True)
        env = {**home.env, "TMPDIR": tmp}
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
        claude = shlex.quote(self.demo["claude"])
        atomic_write(
            wrapper_path(root),
            "#!/bin/sh\n" + exports + f'exec {claude} --permission-mode default "$@"\n',
        )
        os.chmod(wrapper_path(root), 0o755)
        # the engine in this process reads token use from the same transcripts
        os.environ["CLAUDE_CONFIG_DIR"] = home.config_dir

    def stop(self) -> None:
        if self.model is not None:
            self.model.stop()

    def model_usage(self) -> dict:
        """Token totals of the model's log, as comm-node counts them: every answer that
        Claude Code writes to a transcript (side requests, such as session titles, it never
        writes). An answer cut off mid-stream (Escape) reached the client with only
        message_start's placeholder output of 1 token: counted as the client got it."""
        totals: Counter = Counter()
        side = interrupted = 0
        entries = self.model.requests() if self.model else []
        for e in entries:
            if e.kind == "side":
                side += 1
                continue
            if e.kind not in ("prompt", "tool_result", "notification") or not e.usage:
                continue
            u = e.usage if e.completed else {**e.usage, "output_tokens": 1}
            interrupted += not e.completed
            totals["input"] += u.get("input_tokens", 0)
            totals["output"] += u.get("output_tokens", 0)
            totals["cache_write"] += u.get("cache_creation_input_tokens", 0)
            totals["cache_read"] += u.get("cache_read_input_tokens", 0)
            totals["responses"] += 1
        keys = ("input", "output", "cache_write", "cache_read", "responses")
        return {
            **{k: totals[k] for k in keys},
            "total": sum(totals[k] for k in ("input", "output", "cache_write", "cache_read")),
            "side_requests": side,
            "interrupted": interrupted,
            # how many entries were read: the first lines of the log file (an entry is
            # written to it as it joins the log). The engine still nudges agents after the
            # summary (mail routed at the end), and the model answers them.
            "entries": len(entries),
        }


class Operator:
    """The operator's stand-in: approves each permission prompt (with the keys the agent CLI
    names, never typed text); once the restart domain's task is done and it is at rest,
    restarts it and tells it to carry on; types again comm-node's words that did not get
    through (a first prompt, a nudge left in the box)."""

    def __init__(self, demo: dict, panes, coord, approve_after_s: float | None = None) -> None:
        self.demo = demo
        self.approve_after_s = (
            demo["approve_after_s"] if approve_after_s is None else approve_after_s
        )
        self.panes = panes
        self.coord = coord
        self.counts: Counter = Counter()
        self._waiting_since: dict[str, float] = {}
        self._answered_at: dict[str, float] = {}  # agents answered, not yet seen at work
        self.restart_phase = "pending"  # pending -> restarted -> told
        self._restarted_at = 0.0

        # agent -> comm-node's words it must get again: a first prompt the kickoff could not
        # deliver, or a nudge left typed but not submitted
        self.to_type: dict[str, str] = {}
        # agent -> when words were last typed into it, until it is seen at work after: the
        # restart waits for that turn (a restart right after typing killed Claude Code while
        # the answer came in: the model sent it, Claude Code counted it in its cost-state and
        # never wrote it to its transcript)
        self._typed_at: dict[str, float] = {}
        self._box_seen: dict[str, tuple[str, float]] = {}  # agent -> (box text, first seen)
        # agent -> (pane id, its activity, when captured (wall clock), screen): _screen()
        self._screens: dict[str, tuple[str, int, float, str]] = {}

    def after_kickoff(self, ws, meeting: dict) -> None:
        """A first prompt the kickoff could not type (Claude Code still drawing its screen on
        a loaded machine) is typed again by the operator once the agent is at its prompt."""
        from comm_node_tui.adapters.agent_cli import agent_cli_for
        from comm_node_tui.kickoff.meeting import FIRST_PROMPT

        cli = agent_cli_for(ws)
        for name, why in (meeting.get("failed") or {}).items():
            if str(why).startswith("first prompt not delivered"):
                self.to_type[name] = FIRST_PROMPT.format(
                    name=name, project=ws.project, instructions=cli.instructions_file
                )

    def tend(self, engine) -> None:
        world = engine.snapshot()
        self._approve(world)
        self._stranded(world)
        self._retype(world)
        self._restart(engine, world)

    def _stranded(self, world) -> None:
        """A mail nudge left in an idle agent's input box, typed but never submitted (the
        delivery gave up while Claude Code was slow to draw it, on a loaded machine): typed
        again. Only text that stays there for 3 s: a delivery in progress submits within a
        second."""
        now = time.monotonic()
        for agent in world.agents:
            if agent.state != "idle" or agent.name in self.to_type:
                self._box_seen.pop(agent.name, None)
                continue
            box = (self.panes.cli.read_screen(self._screen(agent)).input or "").strip()
            ours = _NUDGE.fullmatch(box)
            if ours is None:
                self._box_seen.pop(agent.name, None)
                continue
            seen = self._box_seen.setdefault(agent.name, (box, now))
            if seen[0] != box:
                self._box_seen[agent.name] = (box, now)
            elif now - seen[1] >= 3.0:
                del self._box_seen[agent.name]
                self.to_type[agent.name] = box
                self.counts["stranded_retyped"] += 1

    def _screen(self, agent) -> str:
        """The agent's screen, captured again only when tmux saw activity in its pane since
        the last capture (whole seconds: a capture in the same second is not trusted), as the
        room's preview does: a look at each idle agent every tend was four tmux processes
        (has-session twice, list-panes, capture-pane) for a screen that had not changed."""
        pane = agent.pane
        if pane is None or not pane.id:
            return self.panes.peek(agent.name)
        cached = self._screens.get(agent.name)
        if cached and cached[:2] == (pane.id, pane.activity) and cached[2] > pane.activity + 1:
            return cached[3]
        at = time.time()
        text = self.panes.tmux.capture(pane.id)
        self._screens[agent.name] = (pane.id, pane.activity, at, text)
        return text

    def _retype(self, world) -> None:
        from comm_node_tui.panes.inject import NotDelivered

        for agent in world.agents:
            text = self.to_type.get(agent.name)
            if text is None or agent.state != "idle":
                continue
            raw = self.panes.peek(agent.name)
            if self.panes.cli.input_is(raw, text):
                # our words, typed but not submitted (a delivery that gave up): taken out of
                # the box (never submitted blind), then typed again with the usual checks
                self.panes.tmux.cmd("send-keys", "-t", self.panes.pane(agent.name).id, "C-u")
                continue
            if self.panes.cli.read_screen(raw).input:
                continue  # someone else's text: theirs to submit
            try:
                self.panes.inject(agent.name, text, ready_timeout_s=2.0)
            except NotDelivered:
                continue  # tried again next time
            del self.to_type[agent.name]
            self._typed_at[agent.name] = time.monotonic()
            self.counts["typed"] += 1

    def _approve(self, world) -> None:
        from comm_node_tui.errors import CommNodeError

        now = time.monotonic()
        for agent in world.agents:
            if agent.state != "waiting":
                self._waiting_since.pop(agent.name, None)
                self._answered_at.pop(agent.name, None)
                continue
            # The screen takes a moment to drop an answered dialog (longer on a loaded
            # machine): the same dialog is never answered twice, a new key could land in the
            # next one or in the input box. Only a dialog still there 10 s on is answered
            # again (the keys were lost).
            if now - self._answered_at.get(agent.name, -1e9) < 10.0:
                continue
            since = self._waiting_since.setdefault(agent.name, now)
            if now - since < self.approve_after_s:
                continue
            self._answered_at[agent.name] = now
            try:
                self.panes.answer(agent.name, allow=True)
            except CommNodeError:
                # the dialog went (or is not a permission prompt): looked at again next time
                self.counts["answer_refused"] += 1
            else:
                self.counts["approved"] += 1
            self._waiting_since.pop(agent.name, None)

    def _restart(self, engine, world) -> None:
        name = self.demo["restart"]
        if self.restart_phase == "told":
            return
        view = next((a for a in world.agents if a.name == name), None)
        if self.restart_phase == "pending":
            task = next((t for t in real_plan.TASKS if t[1] == name), None)
            closed = task is not None and _task_status(world, task[0]) in ("closed", "done")
            if view is None or not closed or not self._at_rest(view):
                return
            self.coord.emit(
                Event(
                    "demo.restart",
                    f"the demo restarts {name} (its task is done; it carries on after)",
                    agent=name,
                    level="warn",
                )
            )
            self.panes.restart(name)
            self.counts["restarts"] += 1
            self.restart_phase = "restarted"
            self._restarted_at = time.monotonic()
            return
        # restarted: once the new Claude Code is at its prompt, the operator's words
        if time.monotonic() - self._restarted_at < 1.0:
            return
        try:
            screen = self.panes.cli.read_screen(self.panes.peek(name))
        except Exception:
            return
        if screen.state != "idle":
            return
        self.to_type[name] = RESTART_WORDS  # typed by _retype, with its checks
        self.restart_phase = "told"

    def pending(self) -> bool:
        """Whether the stand-in still has its part to play: the restart not yet made and
        told, or comm-node's words still to type again."""
        return self.restart_phase != "told" or bool(self.to_type)

    def left(self) -> str:
        """What is left of its part, in a few words (for the event when it is given up)."""
        parts = []
        if self.restart_phase != "told":
            parts.append(f"restart of {self.demo['restart']}: {self.restart_phase}")
        if self.to_type:
            parts.append(f"words still to type to {', '.join(sorted(self.to_type))}")
        return "; ".join(parts) or "nothing"

    def _at_rest(self, view) -> bool:
        """Idle, with no words of ours waiting to be typed, and not typed into since the
        world was last seen: after typing, the agent must be seen at work first (the world
        read before the typing still says idle), or stay idle for 30 s (a turn too short to
        be seen, or words that started none)."""
        name = view.name
        if view.state != "idle" or name in self.to_type:
            if view.state != "idle" and name not in self.to_type:
                self._typed_at.pop(name, None)  # seen at work: its turn is under way
            return False
        typed = self._typed_at.get(name)
        return typed is None or time.monotonic() - typed >= REST_AFTER_TYPING_S


# After typing into an agent that is then never seen at work, it counts as at rest this long
# after (a turn too short for the engine to see, or words that started none)
REST_AFTER_TYPING_S = 30.0

# The engine's mail nudge (engine/nudges.py): a nudge left typed is not typed again by the
# engine. (The first prompt and the restart words are kept in Operator.to_type until they
# are delivered.)
_NUDGE = re.compile(r"You have \d+ new messages?: run `comm-node inbox`")


def _task_status(world, tid: str) -> str | None:
    node = world.task_graph.get(tid)
    return None if node is None else getattr(node, "status", None)


def deliveries(events: list[dict]) -> dict:
    """What comm-node typed into the agents (agent.injected), by who asked (kickoff prompt,
    operator, nudge), and what it refused to type (agent.inject_refused), by reason."""
    typed: Counter = Counter()
    refused: Counter = Counter()
    for e in events:
        data = e.get("data") or {}
        if e.get("type") == "agent.injected":
            typed[data.get("by", "?")] += 1
        elif e.get("type") == "agent.inject_refused":
            refused[data.get("reason", "?")] += 1
    return {
        "events": len(events),  # how many were read: the demo's teardown may log more
        "typed": sum(typed.values()),
        "typed_by": dict(typed),
        "refused": sum(refused.values()),
        "refused_by_reason": dict(refused),
    }


def receipt_counts(state_dir: str) -> dict:
    """Every delivery's receipt by its last state (typed, submitted, started, answered, failed
    by reason): "started" and "answered" are what the agents' own hooks proved."""
    from comm_node_tui.protocol import receipts as rc

    path = rc.path_in(state_dir)
    records = rc.fold(rc.read_records(path, tail_bytes=rc.MAX_BYTES))
    states: Counter = Counter(r["state"] for r in records.values())
    failed: Counter = Counter(
        r["reason"] or "?" for r in records.values() if r["state"] == rc.FAILED
    )
    return {"total": len(records), "by_state": dict(states), "failed_by_reason": dict(failed)}


def read_events(path_of_events: str) -> list[dict]:
    from comm_node_tui.protocol.events import log_files

    out = []
    for path in log_files(path_of_events):  # oldest first
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        except OSError:
            continue
    return out
