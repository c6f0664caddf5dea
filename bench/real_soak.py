"""Soak with real Claude Code (by hand, not in CI): N real `claude` agents (the pinned build,
`--permission-mode default`) in tmux panes started by comm-node, offline against the scripted
model, driven for M minutes with a seeded random mix of what a control room does all day:
messages to peers, locks, task claims, long streams, interrupts, permission prompts approved
or denied. The real engine runs in this process (as `comm-node serve` runs it), so hooks,
status, screens, locks, claims and the watchdog work exactly as for a user.

Each agent, between rests of 1-12 s, picks (weights in MIX): `CN_BASH comm-node send --to
PEER`, `lock acquire/release 'src/mN/**'`, `task claim/done`, `CN_SLOW 20-90`, `CN_SLOW 40-90`
interrupted (Escape) after 2-20 s, or `CN_BASH touch src/pN.txt`, whose permission prompt is
answered 0.5-8 s after the engine shows "waiting" (approve 80 %, deny 20 %). All typing goes
through `AgentPanes.inject`, which waits for the free prompt; the engine's own nudges ("You
have N new messages") come on top, as for a user.

Every second, for every agent, the screen is read and, a few milliseconds later, the state
the engine shows for it (`Engine.snapshot()`, on the engine's loop); samples whose screen is
"unknown" are not counted. Reported: the % of samples that agree (and every disagreement,
grouped), agents falsely declared lost/dead/stale/stuck, locks or claims taken from live
agents, messages sent vs delivered (each exactly once), permission prompts answered,
interrupts, injections refused (by reason), token use as the engine counts it vs the
scripted model's log, and memory (this process, which holds the engine, and each claude).

Usage: .venv/bin/python bench/real_soak.py [--minutes 10] [--agents 8] [--seed 1]
                                            [--json OUT] [--keep]

Everything is private: a tmux server of its own (`-L cn-real-soak-PID`), a HOME and
CLAUDE_CONFIG_DIR under a temporary directory (never ~/.claude), the scripted model on
127.0.0.1. The tmux server, the agents and the model are stopped on exit, Ctrl-C or error.
`--keep` keeps the temporary directory (workspace, transcripts, model log, samples).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

from common import machine, rss_kb
from realagents import (
    EngineThread,
    claude_binary,
    iso_ts,
    private_environ,
    read_events,
    stop_agents,
    write_real_workspace,
)

REPO = Path(__file__).resolve().parent.parent
ALIVE_EVENTS = ("agent.lost", "agent.dead", "agent.stale", "agent.stuck")
# What each agent does next, and how often (weights).
MIX = {
    "message": 25,
    "lock": 14,
    "task": 12,
    "slow": 17,
    "interrupt": 12,
    "permission": 20,
}
TASKS_PER_DOMAIN = 80
QUEUED = re.compile(r"queued (\S+) to (\S+)")


# ---- helpers ------------------------------------------------------------------------------
def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def code_stamp() -> dict:
    """Which comm-node ran: the commit, files changed from it, and the newest mtime under
    comm_node_tui/. The engine's code is loaded once, at start; hooks and the agents'
    `comm-node ...` calls load it afresh each time, so an edit during a run reaches them."""

    def git(*args: str) -> str:
        res = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return res.stdout.strip()

    newest = max((p.stat().st_mtime for p in (REPO / "comm_node_tui").rglob("*.py")), default=0.0)
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "changed_from_commit": git("status", "--porcelain", "--", "comm_node_tui").splitlines(),
        "newest_source_mtime": time.strftime("%H:%M:%S", time.localtime(newest)),
        "newest_source_epoch": newest,
    }


def engine_params(engine) -> dict:
    """The timings that decide how fast the shown state follows the screen."""
    from comm_node_tui.adapters.claude.cli import ClaudeCode
    from comm_node_tui.adapters.screen import ScreenState
    from comm_node_tui.engine import agent_state

    return {
        "pane_poll_s": engine.screens.poll_s,
        "screen_idle_s": engine.screens.idle_s,
        **{
            k.lower(): getattr(agent_state, k)
            for k in dir(agent_state)
            if k.endswith("_S") and isinstance(getattr(agent_state, k), int | float)
        },
        "screen_module_idle_default_s": ScreenState(ClaudeCode()).idle_s,
    }


# ---- the workspace ------------------------------------------------------------------------
def write_workspace(
    tmp: Path, base_url: str, n: int, socket: str, claude: str
) -> tuple[Path, object, list]:
    """N domains whose agent is the pinned claude in default permission mode, trusted in a
    private config, hooks installed, a native tasks.toml; (root, ClaudeHome, names)."""
    names = [f"d{i:02d}" for i in range(n)]
    tasks = [
        f'[[tasks]]\nid = "{name}-T{k:02d}"\ntitle = "soak task {k} of {name}"\ndomain = "{name}"\n'
        for name in names
        for k in range(TASKS_PER_DOMAIN)
    ]
    root, home = write_real_workspace(
        tmp, base_url, names, socket, project="soak", claude=claude, tasks="\n".join(tasks)
    )
    return root, home, names


# ---- shared state between drivers and the sampler -----------------------------------------
class Rig:
    def __init__(self, args, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.socket = f"cn-real-soak-{os.getpid()}"
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.round = 0  # sampler rounds
        self.latest: dict[str, dict] = {}  # name -> last sample
        self.phase: dict[str, tuple[str, float]] = {}
        self.stop_all = threading.Event()  # Ctrl-C / error: every thread stops now
        self.counts: Counter = Counter()
        self.not_delivered: Counter = Counter()
        self.notes: list[str] = []  # oddities worth reading, with time and agent
        self.sent: dict[str, dict] = {}  # tag -> {from, to, t}
        self.inject_s: list[float] = []
        self.model = None
        self.eng: EngineThread | None = None
        self.ws = None
        self.names: list[str] = []
        self.t0 = 0.0

    def note(self, name: str, text: str) -> None:
        with self.lock:
            self.notes.append(f"{time.time() - self.t0:7.1f}s {name}: {text}")

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def set_phase(self, name: str, phase: str) -> None:
        with self.lock:
            self.phase[name] = (phase, time.time())

    def wait_rounds(self, n: int, timeout: float) -> bool:
        """Until the sampler has finished `n` more rounds."""
        with self.cond:
            target = self.round + n
            return self.cond.wait_for(
                lambda: self.round >= target or self.stop_all.is_set(), timeout
            )

    def sample_of(self, name: str) -> dict:
        with self.lock:
            return dict(self.latest.get(name) or {})


# ---- one agent's driver -------------------------------------------------------------------
class Driver(threading.Thread):
    def __init__(self, rig: Rig, name: str, index: int, deadline: float) -> None:
        super().__init__(name=f"drive-{name}", daemon=True)
        from comm_node_tui.coordination.coordinator import Coordinator
        from comm_node_tui.panes.manager import AgentPanes

        self.rig = rig
        self.agent = name
        self.rng = random.Random(f"{rig.args.seed}-{index}")
        self.deadline = deadline
        self.panes = AgentPanes(rig.ws)  # its own tmux client; events to the log file
        self.coord = Coordinator(rig.ws)
        self.peers = [n for n in rig.names if n != name]
        self.locks: set[str] = set()
        self.claimed: str | None = None
        self.next_task = 0
        self.n = 0
        self.error: str | None = None

    # -- primitives
    def inject(self, text: str) -> bool:
        from comm_node_tui.errors import CommNodeError
        from comm_node_tui.panes.inject import NotDelivered

        rig = self.rig
        start = time.monotonic()
        try:
            self.panes.inject(self.agent, text, ready_timeout_s=15.0)
        except NotDelivered as exc:
            rig.count("inject_refused")
            with rig.lock:
                rig.not_delivered[f"{exc.reason}{' (typed)' if exc.typed else ''}"] += 1
            rig.note(self.agent, f"NotDelivered {exc.reason} typed={exc.typed}: {text[:60]}")
            if exc.reason == "dialog":
                self.stray_dialog()
            elif exc.typed:
                self.clear_box()
            return False
        except CommNodeError as exc:
            rig.count("inject_error")
            rig.note(self.agent, f"inject error: {exc}")
            return False
        rig.inject_s.append(time.monotonic() - start)
        rig.count("injected")
        return True

    def stray_dialog(self) -> None:
        """A dialog nobody asked for (our text merged with another's and became a command
        that asks, say): the operator reads it and says no, so the day goes on."""
        from comm_node_tui.adapters.claude.screen import read_screen

        time.sleep(2.0)
        try:
            screen = read_screen(self.panes.peek(self.agent))
        except Exception:
            return
        if screen.state == "waiting" and screen.dialog == "permission":
            self.rig.count("stray_dialogs_denied")
            self.rig.note(self.agent, "a permission dialog nobody asked for: denied")
            self.answer(False, "stray dialog")
            self.wait_turn_end(time.time(), 30)

    def clear_box(self) -> None:
        """Our text left in the box (typed, not submitted): take it out, or the next
        injection would find the box occupied."""
        from comm_node_tui.adapters.claude.screen import read_screen

        time.sleep(1.0)
        try:
            screen = read_screen(self.panes.peek(self.agent))
            if screen.input:
                pane = self.panes.pane(self.agent)
                self.panes.tmux.cmd("send-keys", "-t", pane.id, "C-u")
                self.rig.note(self.agent, f"cleared our text from the box: {screen.input[:60]}")
        except Exception as exc:
            self.rig.note(self.agent, f"could not clear the box: {exc}")

    def wait_turn_end(self, after: float, timeout: float) -> str:
        """Until two sampler screens taken after `after` say idle (or a dialog opens):
        'idle', 'waiting' or 'timeout'."""
        rig = self.rig
        end = time.time() + timeout
        idle_rounds = waiting_rounds = 0
        last_round = -1
        while time.time() < end and not rig.stop_all.is_set():
            rig.wait_rounds(1, 2.0)
            s = rig.sample_of(self.agent)
            # Claude Code redraws about 0.33 s after a key: a screen read within the first
            # second may still show what was there before it.
            if not s or s["t"] <= after + 1.0 or s["round"] == last_round:
                continue
            last_round = s["round"]
            waiting_rounds = waiting_rounds + 1 if s["screen"] == "waiting" else 0
            if waiting_rounds >= 2:
                return "waiting"
            idle_rounds = idle_rounds + 1 if s["screen"] == "idle" else 0
            if idle_rounds >= 2:
                return "idle"
        return "timeout"

    def wait_shown(self, states: tuple[str, ...], after: float, timeout: float) -> dict | None:
        """The first sample after `after` in which the engine shows one of `states`."""
        rig = self.rig
        end = time.time() + timeout
        while time.time() < end and not rig.stop_all.is_set():
            rig.wait_rounds(1, 2.0)
            s = rig.sample_of(self.agent)
            if s and s["t"] > after and s["shown"] in states:
                return s
        return None

    def run_turn(self, kind: str, text: str, timeout: float = 60.0) -> str | None:
        self.rig.set_phase(self.agent, f"{kind}:inject")
        if not self.inject(text):
            return None
        t = time.time()
        self.rig.set_phase(self.agent, f"{kind}:turn")
        end = self.wait_turn_end(t, timeout)
        if end == "waiting":
            self.rig.note(self.agent, f"{kind}: an unexpected dialog opened")
            self.rig.count("unexpected_dialog")
            self.answer(False, kind)
            end = self.wait_turn_end(time.time(), 30)
        if end == "timeout":
            self.rig.count("turn_timeout")
            self.rig.note(self.agent, f"{kind}: the turn did not end within {timeout:.0f} s")
        return end

    def answer(self, allow: bool, kind: str) -> bool:
        from comm_node_tui.errors import CommNodeError

        try:
            self.panes.answer(self.agent, allow=allow)
        except CommNodeError as exc:
            self.rig.count("answer_refused")
            self.rig.note(self.agent, f"{kind}: answer({allow}) refused: {exc}")
            return False
        return True

    # -- actions
    def act_message(self) -> None:
        peer = self.rng.choice(self.peers)
        tag = f"sm-{self.agent}-{self.n}"
        with self.rig.lock:
            self.rig.sent[tag] = {"from": self.agent, "to": peer, "t": time.time()}
        self.run_turn("message", f'CN_BASH comm-node send --to {peer} "soak {tag}: hello"')
        self.rig.count("message_turns")

    def act_lock(self) -> None:
        if self.locks and (self.rng.random() < 0.5 or len(self.locks) >= 3):
            pattern = self.rng.choice(sorted(self.locks))
            verb = "release"
        else:
            free = [f"src/m{i}/**" for i in range(6) if f"src/m{i}/**" not in self.locks]
            pattern = self.rng.choice(free)
            verb = "acquire"
        end = self.run_turn("lock", f"CN_BASH comm-node lock {verb} '{pattern}'")
        if end is None:
            return
        held = {lk.pattern for lk in self.coord.locks() if lk.holder == self.agent}
        if verb == "acquire":
            self.rig.count("lock_acquire_turns")
            if pattern in held:
                self.locks.add(pattern)
                self.rig.count("locks_granted")
        else:
            self.rig.count("lock_release_turns")
            if pattern not in held:
                self.locks.discard(pattern)
                self.rig.count("locks_released_by_agent")
        missing = self.locks - held
        if missing:  # a lock this agent holds vanished without its release
            self.rig.count("locks_vanished", len(missing))
            self.rig.note(self.agent, f"locks gone without release: {sorted(missing)}")
            self.locks -= missing

    def task_status(self, tid: str) -> tuple[str | None, str | None]:
        entry = self.coord.overlay()["tasks"].get(tid) or {}
        return entry.get("status"), entry.get("assignee")

    def act_task(self) -> None:
        if self.claimed:
            tid = self.claimed
            end = self.run_turn("task", f"CN_BASH comm-node task done {tid}")
            if end is None:
                return
            status, _who = self.task_status(tid)
            self.rig.count("task_done_turns")
            if status == "closed":
                self.claimed = None
                self.rig.count("tasks_done")
            elif status != "in_progress":
                self.rig.count("claims_vanished")
                self.rig.note(self.agent, f"{tid} is {status} after `task done`")
                self.claimed = None
            return
        if self.next_task >= TASKS_PER_DOMAIN:
            return
        tid = f"{self.agent}-T{self.next_task:02d}"
        end = self.run_turn("task", f"CN_BASH comm-node task claim {tid}")
        if end is None:
            return
        self.rig.count("task_claim_turns")
        status, who = self.task_status(tid)
        if status == "in_progress" and who == self.agent:
            self.claimed = tid
            self.next_task += 1
            self.rig.count("tasks_claimed")

    def check_claim(self) -> None:
        if self.claimed:
            status, who = self.task_status(self.claimed)
            if status != "in_progress" or who != self.agent:
                self.rig.count("claims_vanished")
                self.rig.note(self.agent, f"claim of {self.claimed} gone: {status} {who}")
                self.claimed = None

    def act_slow(self) -> None:
        seconds = self.rng.randint(20, 90)
        self.run_turn("slow", f"CN_SLOW {seconds}", timeout=seconds + 90)
        self.rig.count("slow_turns")
        self.rig.count("slow_seconds", seconds)

    def act_interrupt(self) -> None:
        rig = self.rig
        seconds = self.rng.randint(40, 90)
        rig.set_phase(self.agent, "interrupt:inject")
        if not self.inject(f"CN_SLOW {seconds}"):
            return
        t = time.time()
        rig.set_phase(self.agent, "interrupt:streaming")
        if self.wait_shown(("busy",), t, 20) is None:
            rig.note(self.agent, "interrupt: never shown busy")
        time.sleep(self.rng.uniform(2, 20))
        from comm_node_tui.errors import CommNodeError

        try:
            self.panes.interrupt(self.agent)
        except CommNodeError as exc:
            rig.note(self.agent, f"interrupt failed: {exc}")
            return
        rig.count("interrupts")
        t = time.time()
        rig.set_phase(self.agent, "interrupt:after-escape")
        if self.wait_turn_end(t, 30) != "idle":
            rig.note(self.agent, "interrupt: not idle 30 s after Escape")
            rig.count("turn_timeout")

    def act_permission(self) -> None:
        rig = self.rig
        dom = rig.ws.domains[self.agent]
        target = os.path.join(dom.path, "src", f"p{self.n}.txt")
        rig.set_phase(self.agent, "permission:inject")
        if not self.inject(f"CN_BASH touch {target}"):
            return
        t = time.time()
        rig.set_phase(self.agent, "permission:asking")
        seen = self.wait_shown(("waiting",), t, 30)
        if seen is None:
            rig.count("permission_never_waiting")
            rig.note(self.agent, "permission: the engine never showed waiting")
            self.wait_turn_end(time.time(), 30)
            return
        rig.count("permission_prompts")
        rig.set_phase(self.agent, "permission:waiting")
        time.sleep(self.rng.uniform(0.5, 8.0))  # the operator reads it
        allow = self.rng.random() < 0.8
        if not self.answer(allow, "permission"):
            self.wait_turn_end(time.time(), 30)
            return
        rig.count("approved" if allow else "denied")
        t = time.time()
        rig.set_phase(self.agent, f"permission:after-{'allow' if allow else 'deny'}")
        end = self.wait_turn_end(t, 60)
        if end != "idle":
            rig.count("turn_timeout")
            rig.note(self.agent, f"permission: {end} after the answer")
        if allow != os.path.exists(target):
            rig.count("permission_wrong_outcome")
            rig.note(self.agent, f"permission allow={allow} but exists={os.path.exists(target)}")

    def run(self) -> None:
        acts = {
            "message": self.act_message,
            "lock": self.act_lock,
            "task": self.act_task,
            "slow": self.act_slow,
            "interrupt": self.act_interrupt,
            "permission": self.act_permission,
        }
        kinds, weights = list(MIX), list(MIX.values())
        try:
            # agents start their day at different moments
            time.sleep(self.rng.uniform(0, 5))
            while time.time() < self.deadline and not self.rig.stop_all.is_set():
                self.n += 1
                kind = self.rng.choices(kinds, weights)[0]
                acts[kind]()
                self.check_claim()
                with self.rig.lock:
                    last = self.rig.phase.get(self.agent, ("", 0.0))[0]
                self.rig.set_phase(self.agent, f"idle after {last}")
                time.sleep(self.rng.uniform(1, 12))  # at rest between turns
        except Exception:
            self.error = traceback.format_exc()
            self.rig.note(self.agent, f"driver crashed: {self.error}")
        finally:
            self.rig.set_phase(self.agent, "finished")


# ---- the sampler --------------------------------------------------------------------------
class Sampler(threading.Thread):
    def __init__(self, rig: Rig, out: Path) -> None:
        super().__init__(name="sampler", daemon=True)
        from comm_node_tui.panes.manager import AgentPanes

        self.rig = rig
        self.tmux = AgentPanes(rig.ws).tmux
        self.out = out
        self.n_samples = 0  # the samples go to `out` only: kept in memory they would
        # grow this process (which holds the engine) by ~2 KB each
        self.memory: list[dict] = []
        self.stop_ev = threading.Event()
        self.error: str | None = None
        self.claude_pids: dict[str, int] = {}
        self.faults = 0

    def engine_view(self, name: str) -> tuple[dict, int | None]:
        """On the engine's loop: what the room shows for `name` (Engine.snapshot), and the
        pid of its Claude Code process (from the hooks)."""
        eng = self.rig.eng.engine
        view = next((a.to_json() for a in eng.snapshot().agents if a.name == name), {})
        return view, (eng.agents.get(name) or {}).get("agent_pid")

    def memory_point(self, t: float) -> None:
        me = rss_kb(os.getpid())
        claude = {n: rss_kb(p) for n, p in self.claude_pids.items() if alive(p)}
        self.memory.append(
            {
                "minute": round((t - self.rig.t0) / 60, 1),
                "engine_process_rss_mb": round(me / 1024, 1),
                "python_allocated_blocks": sys.getallocatedblocks(),
                "claude_rss_mb_median": median([v / 1024 for v in claude.values()]),
                "claude_rss_mb_max": round(max(claude.values(), default=0) / 1024, 1),
                "claude_alive": len(claude),
            }
        )

    def run(self) -> None:
        from comm_node_tui.adapters.claude.screen import read_screen

        rig = self.rig
        eng = rig.eng
        next_at = time.time()
        next_mem = time.time()
        with open(self.out, "w") as fh:
            while not self.stop_ev.is_set() and not rig.stop_all.is_set():
                delay = next_at - time.time()
                if delay > 0:
                    time.sleep(delay)
                next_at += 1.0
                try:
                    panes = self.tmux.panes()
                except Exception as exc:
                    self.faults += 1
                    rig.note("sampler", f"round failed: {type(exc).__name__}: {exc}")
                    if not eng.thread.is_alive():
                        break
                    continue
                for name in rig.names:
                    pane = panes.get(name)
                    # The screen, then at once what the engine shows for it: one snapshot
                    # per agent keeps the two readings milliseconds apart (one snapshot per
                    # round and 8 captures after it put up to 0.8 s between them under load).
                    try:
                        raw = self.tmux.capture(pane.id) if pane and not pane.dead else ""
                        t_screen = time.time()
                        view, pid = eng.call(lambda n=name: self.engine_view(n))
                        t_view = time.time()
                    except Exception as exc:
                        self.faults += 1
                        rig.note("sampler", f"{name}: {type(exc).__name__}: {exc}")
                        if not eng.thread.is_alive():
                            break
                        continue
                    if isinstance(pid, int):
                        self.claude_pids.setdefault(name, pid)
                        if pid != self.claude_pids[name]:
                            rig.note(name, f"agent pid changed {self.claude_pids[name]} -> {pid}")
                            self.claude_pids[name] = pid
                    scr = read_screen(raw) if raw else None
                    with rig.lock:
                        phase, since = rig.phase.get(name, ("start", rig.t0))
                    s = {
                        "t": t_screen,
                        "round": rig.round,
                        "agent": name,
                        "shown": view.get("state"),
                        "health": view.get("health"),
                        "hook": view.get("hook_state"),
                        "engine_screen": (view.get("pane") or {}).get("screen_state"),
                        "hook_age_s": view.get("heartbeat_age_s"),
                        "engine_screen_for_s": round(
                            t_view - float((view.get("pane") or {}).get("screen_since") or t_view),
                            1,
                        ),
                        "screen": scr.state if scr else ("dead" if pane else "gone"),
                        "dialog": scr.dialog if scr else None,
                        "skew_ms": round((t_view - t_screen) * 1000),
                        "phase": phase,
                        "phase_s": round(t_screen - since, 1),
                        "pane_dead": bool(pane.dead) if pane else None,
                        "pid_alive": alive(pid) if isinstance(pid, int) else None,
                    }
                    self.n_samples += 1
                    fh.write(json.dumps(s) + "\n")
                    fh.flush()
                    with rig.lock:
                        rig.latest[name] = s
                if not eng.thread.is_alive():
                    break
                with rig.cond:
                    rig.round += 1
                    rig.cond.notify_all()
                if time.time() >= next_mem:
                    self.memory_point(time.time())
                    next_mem += 60.0


# ---- analysis -----------------------------------------------------------------------------
def agreement(samples: list[dict]) -> dict:
    """% of samples (screen known) where shown == screen; mismatches grouped, and runs of
    consecutive mismatches per agent (episodes) with their lengths."""
    counted = [s for s in samples if s["screen"] in ("idle", "busy", "waiting")]
    bad = [s for s in counted if s["shown"] != s["screen"]]
    by_pair = Counter(f"shown {s['shown']} / screen {s['screen']}" for s in bad)
    by_phase = Counter(f"{s['shown']}/{s['screen']} during {s['phase']}" for s in bad)
    by_hook = Counter(
        f"{s['shown']}/{s['screen']} hook={s['hook']} engine_screen={s['engine_screen']}"
        for s in bad
    )
    # episodes: consecutive mismatching samples of one agent (same shown/screen pair)
    episodes: list[dict] = []
    per_agent: dict[str, list[dict]] = defaultdict(list)
    for s in counted:
        per_agent[s["agent"]].append(s)
    for name, rows in per_agent.items():
        run: list[dict] = []
        for s in [*rows, None]:
            if s is not None and s["shown"] != s["screen"]:
                if run and (s["round"] - run[-1]["round"] > 1):
                    episodes.append(_episode(name, run))
                    run = []
                run.append(s)
                continue
            if run:
                episodes.append(_episode(name, run))
                run = []
    lengths = Counter(min(e["samples"], 10) for e in episodes)
    ep_kinds: dict[str, list[int]] = defaultdict(list)
    for e in episodes:
        ep_kinds[f"{e['pair']} during {e['phase']}"].append(e["samples"])
    return {
        "samples": len(samples),
        "counted": len(counted),
        "screen_unknown_or_absent": len(samples) - len(counted),
        "agree": len(counted) - len(bad),
        "agree_pct": round(100 * (len(counted) - len(bad)) / max(1, len(counted)), 2),
        "mismatches": len(bad),
        "screen_to_engine_reading_ms": {
            "median": median([s["skew_ms"] for s in samples]),
            "p95": sorted(s["skew_ms"] for s in samples)[int(0.95 * (len(samples) - 1))]
            if samples
            else None,
            "max": max((s["skew_ms"] for s in samples), default=None),
        },
        "by_pair": dict(by_pair.most_common()),
        "by_phase": dict(by_phase.most_common(25)),
        "by_hook_and_engine_screen": dict(by_hook.most_common(25)),
        "episodes": len(episodes),
        "episode_lengths_samples": {
            (f"{k}" if k < 10 else "10+"): v for k, v in sorted(lengths.items())
        },
        "episodes_by_kind": {
            k: {"n": len(v), "median_s": median(v), "max_s": max(v), "total_samples": sum(v)}
            for k, v in sorted(ep_kinds.items(), key=lambda kv: -sum(kv[1]))
        },
        "longest_episodes": sorted(episodes, key=lambda e: -e["samples"])[:8],
        "health_not_ok_samples": Counter(
            s["health"] for s in samples if s["health"] not in ("ok", None)
        ),
    }


def _episode(name: str, run: list[dict]) -> dict:
    first = run[0]
    return {
        "agent": name,
        "samples": len(run),
        "pair": f"{first['shown']}/{first['screen']}",
        "phase": first["phase"],
        "phase_s_at_start": first["phase_s"],
        "hook": first["hook"],
        "engine_screen": first["engine_screen"],
        "t": round(first["t"], 1),
    }


def messages(rig: Rig) -> dict:
    """Sent (the agent's `comm-node send` printed "queued ID") vs delivered: each id once in
    its recipient's inbox (unread or read) and nowhere else."""
    queued: dict[str, dict] = {}
    for e in rig.model.requests():
        if e.kind != "tool_result" or not e.prompt or not e.tool_result:
            continue
        tag = re.search(r"soak (sm-\S+):", e.prompt)
        m = QUEUED.search(e.tool_result)
        if tag and m and tag.group(1) in rig.sent:
            queued[m.group(1)] = {"tag": tag.group(1), **rig.sent[tag.group(1)]}
    where: dict[str, list[str]] = defaultdict(list)
    for name in rig.names:
        dom = rig.ws.domains[name]
        for folder in (dom.paths.inbox, dom.paths.inbox_read):
            with contextlib.suppress(OSError):
                for f in os.listdir(folder):
                    if f.endswith(".md"):
                        where[f[:-3]].append(name)
    once = [i for i, m in queued.items() if where.get(i) == [m["to"]]]
    lost = [i for i in queued if i not in where]
    dup = [i for i, m in queued.items() if where.get(i, []).count(m["to"]) > 1]
    wrong = [i for i, m in queued.items() if any(w != m["to"] for w in where.get(i, []))]
    outbox_left = sum(
        1
        for name in rig.names
        for f in os.listdir(rig.ws.domains[name].paths.outbox)
        if f.endswith(".md")
    )
    return {
        "send_turns": len(rig.sent),
        "queued_by_agents": len(queued),
        "delivered_exactly_once": len(once),
        "lost": lost,
        "duplicated": dup,
        "wrong_inbox": wrong,
        "left_in_outboxes": outbox_left,
        "inbox_files_total": sum(len(v) for v in where.values()),
    }


def usage(rig: Rig, config_dir: str) -> dict:
    """The engine's UsageTracker totals vs the model's log (requests of kind prompt and
    tool_result), and a per-response diff against the transcripts read here."""
    eng = rig.eng
    summary = eng.call(lambda: eng.engine.refresh_usage(force=True), timeout=60) or {}
    tracked = Counter()
    for d in summary.get("domains", {}).values():
        for k in ("input", "output", "cache_write", "cache_read", "responses", "unlogged"):
            tracked[k] += d.get(k, 0)
    model_all, model_done, model_got = Counter(), Counter(), Counter()
    by_id: dict[str, object] = {}
    for e in rig.model.requests():
        if e.kind not in ("prompt", "tool_result") or not e.usage:
            continue
        by_id[e.message_id] = e
        # An interrupted stream (Escape) never reached its message_delta: the client got
        # only message_start's usage, whose output_tokens is the placeholder 1.
        got = e.usage if e.completed else {**e.usage, "output_tokens": 1}
        for target, u in ((model_all, e.usage), (model_done, e.usage), (model_got, got)):
            if target is model_done and not e.completed:
                continue
            target["input"] += u.get("input_tokens", 0)
            target["output"] += u.get("output_tokens", 0)
            target["cache_write"] += u.get("cache_creation_input_tokens", 0)
            target["cache_read"] += u.get("cache_read_input_tokens", 0)
            target["responses"] += 1
    # the transcripts, read here: the largest usage per message id
    seen: dict[str, dict] = {}
    for path in Path(config_dir, "projects").rglob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            if b'"usage"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            msg = rec.get("message") or {}
            u = msg.get("usage") if isinstance(msg, dict) else None
            if not isinstance(u, dict) or msg.get("model") == "<synthetic>":
                continue
            prev = seen.get(msg.get("id"))
            if prev is None or u.get("output_tokens", 0) > prev.get("output_tokens", 0):
                seen[msg.get("id")] = u
    diffs: Counter = Counter()
    examples: list[dict] = []
    for mid, e in by_id.items():
        u = seen.get(mid)
        if u is None:
            diffs[f"in the model log, not in a transcript ({e.kind}, completed={e.completed})"] += 1
            continue
        out_diff = e.usage.get("output_tokens", 0) - u.get("output_tokens", 0)
        in_diff = e.usage.get("input_tokens", 0) - u.get("input_tokens", 0)
        if out_diff or in_diff:
            diffs[f"usage differs ({e.kind}, completed={e.completed})"] += 1
            if len(examples) < 5:
                examples.append(
                    {
                        "message_id": mid,
                        "kind": e.kind,
                        "completed": e.completed,
                        "model": e.usage,
                        "transcript": {k: u.get(k) for k in ("input_tokens", "output_tokens")},
                    }
                )
    extra = [mid for mid in seen if mid not in by_id]
    if extra:
        diffs["in a transcript, not in the model log (non-side)"] = len(extra)
    keys = ("input", "output", "cache_write", "cache_read", "responses")
    return {
        "engine_tracker": {k: tracked[k] for k in (*keys, "unlogged")},
        "model_log_all": {k: model_all[k] for k in keys},
        "model_log_completed": {k: model_done[k] for k in keys},
        "tracker_minus_model_all": {k: tracked[k] - model_all[k] for k in keys},
        "equal_to_model_all": all(tracked[k] == model_all[k] for k in keys),
        "model_log_as_the_client_got_it": {k: model_got[k] for k in keys},
        "equal_to_what_the_client_got": all(tracked[k] == model_got[k] for k in keys),
        "interrupted_responses": model_all["responses"] - model_done["responses"],
        "per_response_diffs": dict(diffs),
        "diff_examples": examples,
        "side_requests": sum(1 for e in rig.model.requests() if e.kind == "side"),
    }


def events_report(rig: Rig, samples: list[dict], events: list[dict]) -> dict:
    t0 = rig.t0
    types = Counter(e.get("type") for e in events)
    false_lost = []
    for e in events:
        if e.get("type") not in ALIVE_EVENTS:
            continue
        name, ts = e.get("agent"), iso_ts(e.get("ts", ""))
        near = [s for s in samples if s["agent"] == name and abs(s["t"] - ts) < 3]
        was_alive = all(not s["pane_dead"] and s["pid_alive"] is not False for s in near)
        false_lost.append(
            {
                "type": e["type"],
                "agent": name,
                "at_s": round(ts - t0, 1),
                "msg": e.get("msg"),
                "process_alive": was_alive,
            }
        )
    released = [
        {"type": e["type"], "agent": e.get("agent"), "msg": e.get("msg"), "data": e.get("data")}
        for e in events
        if (e.get("type") == "lock.released" and (e.get("data") or {}).get("why") != "released")
        or e.get("type") in ("task.released", "lock.expired")
    ]
    refused = Counter(
        f"{(e.get('data') or {}).get('by')}: {(e.get('data') or {}).get('reason')}"
        for e in events
        if e.get("type") == "agent.inject_refused"
    )
    injected_by = Counter(
        (e.get("data") or {}).get("by") for e in events if e.get("type") == "agent.injected"
    )
    faults = [
        {"type": e["type"], "msg": e.get("msg")}
        for e in events
        if e.get("type")
        in ("engine.fault", "tmux.action_failed", "tmux.session_lost", "tmux.unavailable")
        or (e.get("level") == "error" and e.get("type") not in ALIVE_EVENTS)
    ]
    return {
        "events": len(events),
        "by_type": dict(types.most_common()),
        "alive_alerts": false_lost,
        "falsely_lost": sum(1 for x in false_lost if x["process_alive"]),
        "taken_from_live_agents": released,
        "inject_refused_events": dict(refused),
        "injected_by": dict(injected_by),
        "faults": faults[:20],
    }


# ---- main ---------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the JSON summary here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    from comm_node_tui.model import ScriptedModel
    from comm_node_tui.panes.manager import AgentPanes
    from comm_node_tui.workspace.discovery import load_workspace

    claude = claude_binary(install=True)  # installs the pinned build first if it is missing
    code_at_start = code_stamp()
    tmp = Path(tempfile.mkdtemp(prefix="cn-real-soak-"))
    rig = Rig(args, tmp)
    private_environ(rig.socket)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    sampler: Sampler | None = None
    drivers: list[Driver] = []
    report: dict = {}
    interrupted = False
    try:
        rig.model = ScriptedModel(log_path=tmp / "model.jsonl")
        rig.model.start()
        root, home, rig.names = write_workspace(
            tmp, rig.model.base_url, args.agents, rig.socket, claude
        )
        os.environ["CLAUDE_CONFIG_DIR"] = home.config_dir  # the room's usage reads this one
        rig.ws = load_workspace(str(root))
        print(f"workspace {root}; tmux -L {rig.socket}; model {rig.model.base_url}", flush=True)
        rss_before_engine = rss_kb(os.getpid())
        rig.eng = EngineThread(rig.ws)
        rig.eng.start()
        t_up = time.time()
        AgentPanes(rig.ws).up()
        rig.t0 = time.time()
        sampler = Sampler(rig, tmp / "samples.jsonl")
        sampler.start()
        # every agent at its prompt (the sampler reads the screens)
        deadline = time.time() + 120
        while time.time() < deadline:
            rig.wait_rounds(1, 3)
            if all(rig.sample_of(n).get("screen") == "idle" for n in rig.names):
                break
        else:
            first = next(n for n in rig.names if rig.sample_of(n).get("screen") != "idle")
            raise RuntimeError(
                "not every agent reached its prompt: "
                + ", ".join(f"{n}={rig.sample_of(n).get('screen')}" for n in rig.names)
                + f"\n{first}'s screen:\n{AgentPanes(rig.ws).peek(first)}"
            )
        ready_s = time.time() - t_up
        print(f"{len(rig.names)} agents at their prompt after {ready_s:.1f} s", flush=True)
        sampler.memory_point(time.time())
        t_drive = time.time()
        end = t_drive + args.minutes * 60
        drivers = [Driver(rig, n, i, end) for i, n in enumerate(rig.names)]
        for d in drivers:
            d.start()
        last_print = time.time()
        while any(d.is_alive() for d in drivers):
            time.sleep(1)
            if not rig.eng.thread.is_alive():
                rig.note("engine", "the engine thread ended")
                break
            if time.time() - last_print >= 60:
                last_print = time.time()
                m = sampler.memory[-1] if sampler.memory else {}
                print(
                    f"  {(time.time() - t_drive) / 60:4.1f} min: {sum(rig.counts.values())} "
                    f"counts, {sampler.n_samples} samples, rss {m}",
                    flush=True,
                )
        drive_s = time.time() - t_drive
        # let the mail drain and the transcripts settle, still sampling
        time.sleep(10)
        sampler.memory_point(time.time())
        sampler.stop_ev.set()
        sampler.join(10)
        with open(sampler.out) as fh:
            samples = [json.loads(line) for line in fh]
        events = read_events(rig.ws)
        claude_end = {n: alive(p) for n, p in sampler.claude_pids.items()}
        use = usage(rig, home.config_dir)
        merged = sum(
            1
            for e in rig.model.requests()
            if e.kind == "prompt" and e.prompt and "new message" in e.prompt and "CN_" in e.prompt
        )
        report = {
            "machine": machine(),
            "code": {
                **code_at_start,
                "engine_params": rig.eng.call(lambda: engine_params(rig.eng.engine)),
                "changed_during_run": code_stamp()["newest_source_epoch"]
                > code_at_start["newest_source_epoch"],
            },
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "claude_code": claude,
            "minutes": args.minutes,
            "agents": args.agents,
            "seed": args.seed,
            "drive_s": round(drive_s, 1),
            "agents_ready_s": round(ready_s, 1),
            "state_agreement": agreement(samples),
            "events": events_report(rig, samples, events),
            "messages": messages(rig),
            "actions": dict(sorted(rig.counts.items())),
            "not_delivered": dict(rig.not_delivered),
            "inject_s_median": median(rig.inject_s),
            "inject_s_max": round(max(rig.inject_s), 2) if rig.inject_s else None,
            "prompts_with_a_nudge_and_our_text": merged,
            "usage": use,
            "memory": {
                "engine_in_process": True,
                "note": "RSS of this process: engine + scripted model + drivers + sampler",
                "rss_mb_before_engine": round(rss_before_engine / 1024, 1),
                "by_minute": sampler.memory,
            },
            "claude_processes_alive_at_end": sum(claude_end.values()),
            "claude_processes_known": len(claude_end),
            "engine_crash": rig.eng.crash,
            "engine_thread_alive": rig.eng.thread.is_alive(),
            "driver_errors": [d.error for d in drivers if d.error],
            "sampler_faults": sampler.faults,
            "notes": rig.notes[:200],
            "tmp": str(tmp) if args.keep else None,
        }
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        rig.stop_all.set()
        if sampler is not None:
            sampler.stop_ev.set()
        with contextlib.suppress(Exception):
            if rig.ws is not None:
                AgentPanes(rig.ws).down()
        stop_agents(rig.socket)
        if rig.eng is not None:
            rig.eng.stop()
        if rig.model is not None:
            rig.model.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted or not report:
        return 130 if interrupted else 1
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    print_summary(report)
    return 0


def print_summary(r: dict) -> None:
    a, ev, m, u = r["state_agreement"], r["events"], r["messages"], r["usage"]
    mem = r["memory"]["by_minute"]
    c = r["actions"]
    print(
        f"\n== real soak: {r['agents']} agents x {r['minutes']:g} min ({r['machine']}, "
        f"{r['date']})\n"
        f"code: {r['code']['commit']}"
        f"{' + uncommitted changes' if r['code']['changed_from_commit'] else ''}; "
        f"{r['code']['engine_params']}"
        f"{'; comm_node_tui CHANGED DURING THE RUN' if r['code']['changed_during_run'] else ''}\n"
        f"state shown == screen: {a['agree_pct']} % of {a['counted']} samples "
        f"({a['mismatches']} mismatches in {a['episodes']} episodes; "
        f"{a['screen_unknown_or_absent']} unknown screens not counted)\n"
        f"  mismatches: {a['by_pair']}\n"
        f"falsely lost/dead/stale/stuck: {ev['falsely_lost']} "
        f"(alerts: {len(ev['alive_alerts'])}); locks/claims taken from live agents: "
        f"{len(ev['taken_from_live_agents'])}\n"
        f"messages: {m['queued_by_agents']} queued, {m['delivered_exactly_once']} delivered "
        f"exactly once, {len(m['lost'])} lost, {len(m['duplicated'])} duplicated\n"
        f"permission prompts: {c.get('permission_prompts', 0)} "
        f"({c.get('approved', 0)} approved, {c.get('denied', 0)} denied); "
        f"interrupts {c.get('interrupts', 0)}; locks granted {c.get('locks_granted', 0)}, "
        f"released {c.get('locks_released_by_agent', 0)}; tasks claimed "
        f"{c.get('tasks_claimed', 0)}, done {c.get('tasks_done', 0)}\n"
        f"NotDelivered: {r['not_delivered']}\n"
        f"usage tracker vs model log: {'equal' if u['equal_to_model_all'] else 'differs'} "
        f"{u['tracker_minus_model_all']}; vs what the client got (an interrupted stream "
        f"stops at output_tokens 1; {u['interrupted_responses']} interrupted): "
        f"{'equal' if u['equal_to_what_the_client_got'] else 'differs'}\n"
        f"memory: this process {mem[0]['engine_process_rss_mb'] if mem else '?'} -> "
        f"{mem[-1]['engine_process_rss_mb'] if mem else '?'} MB; claude median "
        f"{mem[-1]['claude_rss_mb_median'] if mem else '?'} MB\n"
        f"claude processes alive at the end: {r['claude_processes_alive_at_end']}/"
        f"{r['claude_processes_known']}; engine crash: {bool(r['engine_crash'])}"
    )


if __name__ == "__main__":
    sys.exit(main())
