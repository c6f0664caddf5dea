"""`comm-node demo`: a workspace of real Claude Code agents (demo/real.py: the pinned build,
offline, against the scripted model) or of five simulated agents, in real tmux, on a private
tmux socket, with the real engine, the real kickoff and the real control room.

The driver also stands in for a patient operator: an agent that dies is restarted after a
grace period (at once when headless; after 20 s with the control room open, so the operator
can do it first with `r`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from comm_node_tui.demo import plan as demo_plan
from comm_node_tui.protocol.events import Event

if TYPE_CHECKING:
    from comm_node_tui.engine.world import TaskCounts


def create(
    directory: str | None,
    speed: float,
    seed: int,
    stalls: int,
    crashes: int,
    claude: str | None = None,
) -> str:
    """Lay the demo workspace out through the real `init` path; its root. With `claude` (the
    executable), the agents are real Claude Code playing the smaller plan of real_plan.py;
    without, the simulated agents play the whole plan."""
    from comm_node_tui.kickoff.plan import load_plan
    from comm_node_tui.kickoff.scaffold import apply, build_plan
    from comm_node_tui.protocol.fileio import atomic_write

    root = os.path.realpath(directory or tempfile.mkdtemp(prefix="comm-node-demo-"))
    os.makedirs(root, exist_ok=True)
    if os.path.exists(os.path.join(root, "comm-node.toml")):
        from comm_node_tui.errors import CommNodeError

        raise CommNodeError(
            f"{root} already holds a workspace; the demo needs a new or empty directory"
        )
    socket = os.environ.get("COMM_NODE_TMUX_SOCKET") or f"cn-demo-{os.getpid()}"
    if claude:
        from comm_node_tui.demo import real, real_plan

        settings = real.settings(speed, claude)
        real_plan.write_files(root)
        text = real_plan.plan_toml(real.agent_command(root), socket, settings["stuck_after_s"])
    else:
        settings = demo_plan.demo_settings(speed, seed, stalls, crashes)
        demo_plan.write_files(root)
        text = demo_plan.plan_toml(speed, seed, socket)
    plan_path = os.path.join(root, "PLAN.toml")
    with open(plan_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    config, tasks, creations = load_plan(plan_path)
    apply(build_plan(root, config, tasks, creations))
    state = os.path.join(root, ".comm-node")
    os.makedirs(state, mode=0o700, exist_ok=True)
    atomic_write(
        os.path.join(state, "demo.json"),
        json.dumps(settings, indent=1),
    )
    return root


def _read_demo(root: str) -> dict:
    try:
        with open(os.path.join(root, ".comm-node", "demo.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _progress(counts: TaskCounts) -> tuple[int, int]:
    """(done, total) from the world's task counts ("ready" is a subset of "open")."""
    return counts.done, counts.total


# How long the run waits, once every task is closed, for the operator's stand-in to finish
# its part (restart an agent and tell it to carry on: well under a minute when all is well)
OPERATOR_GRACE_S = 120.0


class Driver:
    """Engine + kickoff + the operator's stand-in, for both modes."""

    def __init__(self, root: str, speed: float, restart_after_s: float) -> None:
        from comm_node_tui.workspace.discovery import load_workspace

        self.root = root
        self.speed = speed
        self.ws = load_workspace(root)
        # every tmux call of this process (and of the agents it starts) goes to the
        # demo's private server, never the user's
        os.environ["COMM_NODE_TMUX_SOCKET"] = self.ws.config["tmux"]["socket"]
        self.restart_after_s = restart_after_s
        self.started = time.monotonic()
        self.meeting: dict | None = None
        self.stop = threading.Event()
        self.restarts: Counter = Counter()
        self._dead_since: dict[str, float] = {}
        self._restarted_at: dict[str, float] = {}
        self.panes = None
        self.demo = _read_demo(root)
        self.real = None  # RealAgents: the scripted model and Claude Code's home
        self.operator = None  # the operator's stand-in for real agents
        self._tasks_closed_at: float | None = None  # all tasks seen closed, operator not done
        self.operator_gave_up = False
        if self.demo.get("agents") == "claude":
            from comm_node_tui.demo.real import RealAgents

            self.real = RealAgents(self.ws, self.demo)
            self.real.start()  # before the engine: it reads the agents' transcripts

    def kickoff(self, coord) -> dict:
        from comm_node_tui.kickoff.meeting import Meeting
        from comm_node_tui.panes.manager import AgentPanes

        self.panes = AgentPanes(self.ws, coord)
        if self.real is not None:
            from comm_node_tui.demo.real import Operator

            # with the room open, the dialog stays a few seconds: the person watching can
            # answer it first (`y` in the room)
            delay = 3.0 if self.restart_after_s >= 20 else None
            self.operator = Operator(self.demo, self.panes, coord, approve_after_s=delay)
        # real Claude Code takes a few seconds to start (more on a loaded machine)
        timeout = 90 if self.real is not None else 30
        self.meeting = Meeting(self.ws, panes=self.panes, coord=coord, timeout_s=timeout).run()
        if self.operator is not None:
            self.operator.after_kickoff(self.ws, self.meeting)
        return self.meeting

    def tend(self, engine, coord) -> None:
        """Restart agents that died (after the grace period); with real agents, answer their
        permission prompts and stage the restart."""
        if self.operator is not None:
            try:
                self.operator.tend(engine)
            except Exception as exc:
                coord.emit(Event("demo.fault", f"{type(exc).__name__}: {exc}", level="error"))
        now = time.monotonic()
        for name, info in list(engine.panes.items()):
            if not info.get("dead"):
                self._dead_since.pop(name, None)
                continue
            if now - self._restarted_at.get(name, -1e9) < max(6.0, 3 * engine.pane_poll_s):
                continue  # restarted; the engine's view of the pane has not caught up yet
            since = self._dead_since.setdefault(name, now)
            if now - since < self.restart_after_s or self.restarts[name] >= 5:
                continue
            coord.emit(
                Event(
                    "demo.restart",
                    f"the demo restarts {name} (it died {now - since:.0f} s ago)",
                    agent=name,
                    level="warn",
                )
            )
            try:
                self.panes.restart(name)
                self.restarts[name] += 1
                self._restarted_at[name] = now
            except Exception as exc:
                coord.emit(Event("demo.restart_failed", f"{name}: {exc}", level="error"))
            self._dead_since.pop(name, None)

    def settle(self, engine, deadline: float) -> None:
        """Until every agent has finished its turn (its last words and transcript lines
        written: the summary counts them), or `deadline`."""
        while time.monotonic() < deadline:
            self.tend(engine, engine.coord)
            if all(a.state in ("idle", "done") for a in engine.snapshot().agents):
                return
            time.sleep(0.5)

    def finish(self, engine) -> dict:
        """The summary once the plan has run (or timed out): the last answers, lock releases
        and transcript lines have landed, and `ok` says whether every task is done. Headless
        and (in the tests) the control room end a run the same way."""
        time.sleep(min(3.0, 6.0 / self.speed))  # last answers and lock releases land
        # Simulated agents too: one still answering a peer's question when the plan closed
        # wrote its last transcript lines after the summary (its own count ended 891 output
        # tokens above the summary's, at load 15-28)
        # (only once the plan is done: cut short by --timeout, busy agents would hold the
        # summary the whole 30 s, then 20 more of counting)
        done = self.real is not None or self.plan_done(engine)
        if done:
            self.settle(engine, deadline=time.monotonic() + 30)
        engine.scan()
        summary = self.summary(engine)
        # The model logs an answer once its stream has ended and Claude Code writes the
        # transcript line once it has read it: at rest the two agree, but a last answer can
        # sit between them for a moment on a loaded machine. Counted again until they agree
        # (simulated agents, which have no model log: until two counts a second apart agree).
        agree_by = time.monotonic() + (20 if done else 0)
        while time.monotonic() < agree_by:
            if self.real is not None and summary["tokens_equal"]:
                break
            time.sleep(0.5 if self.real is not None else 1.0)
            engine.scan()
            before, summary = summary, self.summary(engine)
            if self.real is None and before["tokens"] == summary["tokens"]:
                break
        # with real agents, the operator's part (the restart, the words after it) is the
        # demo's too
        summary["operator_done"] = self.operator is None or not self.operator.pending()
        summary["ok"] = (
            summary["tasks_total"] > 0
            and summary["tasks_done"] == summary["tasks_total"]
            and summary["operator_done"]
        )
        return summary

    def plan_done(self, engine) -> bool:
        """Every task closed and, with real agents, the operator's stand-in done too: the
        restart domain's task can be the last to close, and a run that ended there left the
        restart unmade, or made with the new Claude Code never told to carry on. A stand-in
        still not done OPERATOR_GRACE_S after the last task closed (its agent dead for good,
        words it can never type) is given up on, with an event, and the run is not ok."""
        done, total = _progress(engine.snapshot().tasks.counts)
        if not (total > 0 and done == total):
            self._tasks_closed_at = None
            return False
        if self.operator is None or not self.operator.pending():
            return True
        now = time.monotonic()
        if self._tasks_closed_at is None:
            self._tasks_closed_at = now
        if now - self._tasks_closed_at < OPERATOR_GRACE_S:
            return False
        if not self.operator_gave_up:
            self.operator_gave_up = True
            engine.emit(
                Event(
                    "demo.fault",
                    f"every task is done, but the operator's stand-in could not finish "
                    f"({self.operator.left()}) in {OPERATOR_GRACE_S:g} s: the run ends",
                    level="error",
                )
            )
        return True

    def summary(self, engine) -> dict:
        from comm_node_tui.protocol.events import log_files

        world = engine.snapshot()
        usage = engine.refresh_usage(force=True) or {"domains": {}}
        kinds: Counter = Counter()
        for path in reversed(log_files(self.ws.paths.events)):
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        try:
                            kinds[json.loads(line).get("type")] += 1
                        except ValueError:
                            continue
            except OSError:
                continue
        tokens = {
            k: sum(int(d.get(k, 0)) for d in usage["domains"].values())
            for k in ("input", "output", "cache_write", "cache_read", "total")
        }
        counts = world.tasks.counts
        done, total = _progress(counts)
        extra: dict = {}
        if self.real is not None:
            from comm_node_tui.demo.real import deliveries, read_events, receipt_counts

            model = self.real.model_usage()
            counted = {
                k: sum(int(d.get(k, 0)) for d in usage["domains"].values())
                for k in ("input", "output", "cache_write", "cache_read", "total", "responses")
            }
            ops = self.operator.counts if self.operator else Counter()
            extra = {
                "agents": "claude",
                "permission_prompts": kinds["agent.approved"] + kinds["agent.denied"],
                "permissions_approved": ops["approved"],
                "restarts": kinds["agent.restarted"],
                "deliveries": deliveries(read_events(self.ws.paths.events)),
                "receipts": receipt_counts(self.ws.paths.state),
                "model_log": model,
                "tokens_equal": all(
                    counted[k] == model[k]
                    for k in ("input", "output", "cache_write", "cache_read", "responses")
                ),
                "tokens_difference": {
                    k: counted[k] - model[k]
                    for k in ("input", "output", "cache_write", "cache_read", "responses")
                },
                # Tokens Claude Code's own totals (the `cost-state` it writes when a session
                # ends: here, the restarted agent's first run) count beyond its transcripts:
                # comm-node adds them to the tokens but they are no response it can count.
                # An answer the client received and never wrote to its transcript (a prompt
                # typed again while it streamed, on a loaded machine) lands here when its
                # session ended before the summary: tokens equal, one response fewer.
                "tokens_unlogged": sum(
                    int(d.get("unlogged", 0)) for d in usage["domains"].values()
                ),
                "model_log_path": self.real.log_path,
                # the stand-in's own work: approvals, answers refused, words typed again
                "operator": dict(ops),
            }
        return {
            "workspace": self.root,
            "tasks": counts.to_json(),
            "tasks_done": done,
            "tasks_total": total,
            "messages_routed": engine.router.routed,
            "messages_bounced": engine.router.bounced,
            "locks_granted": kinds["lock.granted"],
            "locks_refused": kinds["lock.refused"],
            "stalls_detected": kinds["agent.stuck"],
            "recoveries": kinds["agent.recovered"],
            "agents_restarted": sum(self.restarts.values()),
            "tokens": tokens,
            "seconds": round(time.monotonic() - self.started, 1),
            "kickoff": self.meeting,
            "agents": "simulated",
            **extra,
        }

    def teardown(self) -> None:
        from comm_node_tui.panes.manager import AgentPanes

        try:
            AgentPanes(self.ws).down()
        except Exception:
            pass
        import subprocess

        subprocess.run(
            ["tmux", "-L", self.ws.config["tmux"]["socket"], "kill-server"],
            capture_output=True,
            timeout=10,
        )
        if self.real is not None:
            self.real.stop()  # after the agents: none is left mid-request


def run_headless(root: str, speed: float, timeout_s: float) -> tuple[int, dict]:
    from comm_node_tui.tui.bridge import EngineBridge

    driver = Driver(root, speed, restart_after_s=1.0 / speed)
    bridge = EngineBridge(driver.ws, lambda _ev: None)
    bridge.start()
    engine = bridge.engine
    if engine is None:
        from comm_node_tui.errors import CommNodeError

        raise CommNodeError(f"another engine holds {root} (pid {bridge.viewer_of})")
    try:
        driver.kickoff(engine.coord)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            driver.tend(engine, engine.coord)
            if driver.plan_done(engine):
                break
            time.sleep(0.5)
        summary = driver.finish(engine)
        return (0 if summary["ok"] else 1), summary
    finally:
        driver.teardown()
        bridge.stop()


def run_ui(root: str, speed: float, layout: str | None, theme: str) -> dict:
    from comm_node_tui.tui.app import ControlRoom

    driver = Driver(root, speed, restart_after_s=20.0)
    app = ControlRoom(driver.ws, layout=layout, theme=theme)

    def background() -> None:
        # wait for the room's engine, then hold the meeting and tend the agents
        while app.bridge.engine is None and not driver.stop.is_set():
            time.sleep(0.1)
        engine = app.bridge.engine
        if engine is None:
            return
        try:
            driver.kickoff(engine.coord)
            announced = False
            while not driver.stop.is_set():
                driver.tend(engine, engine.coord)
                if not announced and driver.plan_done(engine):
                    announced = True
                    s = driver.summary(engine)
                    engine.emit(
                        Event(
                            "demo.done",
                            f"the plan is done: {s['tasks_total']} tasks in {s['seconds']} s, "
                            f"{s['messages_routed']} messages routed; q leaves the demo",
                        )
                    )
                driver.stop.wait(0.5)
        except Exception as exc:
            engine.emit(Event("demo.fault", f"{type(exc).__name__}: {exc}", level="error"))

    thread = threading.Thread(target=background, name="cn-demo", daemon=True)
    thread.start()
    try:
        app.run()
    finally:
        driver.stop.set()
        thread.join(timeout=10)
        driver.teardown()
    return {"workspace": root}
