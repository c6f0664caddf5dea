"""The demo's simulated agent: looks like Claude Code from the outside, follows the protocol
from the inside, with no model and no network.

Outside: Claude-like screens (a spinner line with "esc to interrupt" while busy, the `❯`
prompt when idle, now and then a permission question that waits for input), typed input
that is visibly answered, `comm-node hook` called with the JSON Claude Code sends, and a
transcript in Claude Code's JSONL shape (several lines per response, a placeholder
`output_tokens: 1` on the early ones) so token burn flows through the real path.

Inside: the loop every agent is told to follow (CLAUDE.md): what is ready (one `task list
--json`: its `ready` column is `task ready`'s list) -> claim -> lock -> work -> publish ->
done -> inbox -> again (looking again when its inbox or the tasks change), with questions
to peers and answers to theirs, all through the real `comm-node` CLI. Seeded; `--speed`
scales every delay. The demo's `.comm-node/demo.json` names the tasks on which an agent
stalls (stops heartbeating for a while) or crashes (exits), once each, so the watchdog, the
alerts and a restart show.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import threading
import time
import uuid
import zlib

from comm_node_tui.adapters.agent_cli import comm_node_argv
from comm_node_tui.demo.fake_agent import FakeAgent

MODEL = "claude-sonnet-4-5-20250929"
# An idle agent's slow beat that shows it alive, in heartbeats (the room shows its age)
SLOW_BEAT = 10
# An idle agent's look for a change no stat shows (none is known: a safety net), in
# heartbeats (20 s at --speed 5): every 10, five mostly idle agents spent ~90 of the demo's
# calls (`inbox` and `task list`) on it
SAFETY_LOOK = 30


class SimAgent(FakeAgent):
    def __init__(self, name: str, speed: float, seed: int, resume: str | None = None) -> None:
        super().__init__(name, None, 0.0, hooks=True)
        self.speed = max(0.05, speed)
        self.rng = random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))
        self.root = os.environ.get("COMM_NODE_WORKSPACE", os.getcwd())
        self.cwd = os.getcwd()
        # `comm-node restart` resumes the session (as Claude Code's --resume): the same id
        self.session = resume or str(uuid.uuid4())
        self.activity: list[str] = []
        self.status_line = ""
        self.kickoff = threading.Event()
        self.answer_event = threading.Event()
        self.woken = threading.Event()  # typed to while idle: look again now
        self.allowed = True
        self.interrupted = False
        self.lock = threading.Lock()
        # the unread messages handle_mail() last saw (names in the inbox folder)
        self.mail_seen: frozenset[str] = frozenset()
        self.responses = 0
        self.parent_uuid: str | None = None
        state_dir = os.path.join(self.root, ".comm-node")
        self.demo = _read_json(os.path.join(state_dir, "demo.json")) or {}
        self.private = self._private_dir()
        os.makedirs(self.private, exist_ok=True)
        self.transcript = os.path.join(self.private, "transcript.jsonl")
        self.usage_path = os.path.join(self.private, "sim-usage.json")
        self.log_path = os.path.join(self.private, "sim-log.jsonl")
        self.marks_path = os.path.join(self.private, "sim-marks.json")
        self.marks = _read_json(self.marks_path) or {}
        self.totals = _read_json(self.usage_path) or {
            "input": 0,
            "output": 0,
            "cache_write": 0,
            "cache_read": 0,
            "responses": 0,
        }
        hb = self.demo.get("heartbeat_stale_s", 10)
        self.heartbeat_every = max(0.3, hb / 3)

    def _private_dir(self) -> str:
        # the domain's own protocol folder (shared directories have one per domain)
        shared = os.path.join(self.cwd, ".comm-node", self.name)
        if os.path.isdir(shared):
            return shared
        return os.path.join(self.cwd, ".comm-node")

    # ---- helpers ----------------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)

    def say(self, line: str) -> None:
        with self.lock:
            self.activity.append(line)
            del self.activity[:-14]

    def cli(self, *args: str, stdin: str | None = None) -> tuple[int, object]:
        """The real `comm-node` CLI; (exit code, parsed JSON or text)."""
        try:
            r = subprocess.run(
                [*comm_node_argv(), *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=30,
                cwd=self.cwd,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return 1, str(exc)
        out = r.stdout
        if "--json" in args:
            try:
                return r.returncode, json.loads(out) if out.strip() else None
            except ValueError:
                return r.returncode, out
        return r.returncode, (out + r.stderr).strip()

    def hook(self, event: str, **fields: object) -> None:
        fields.setdefault("transcript_path", self.transcript)
        super().hook(event, **fields)

    def note(self, **fields: object) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": time.time(), **fields}) + "\n")

    def mark(self, key: str) -> bool:
        """True the first time `key` is marked (kept across restarts)."""
        if self.marks.get(key):
            return False
        self.marks[key] = True
        _write_json(self.marks_path, self.marks)
        return True

    # ---- the transcript ---------------------------------------------------------------------
    def respond(self, text: str, tool: dict | None = None) -> None:
        """One assistant response: two or three lines sharing a message id, the early ones
        with Claude Code's placeholder output count, the last one with the real usage."""
        self.responses += 1
        # the process id too: a resumed session counts its responses from 1 again, and
        # message ids must never repeat (transcripts key responses on them)
        msg_id = f"msg_sim_{self.name}_{self.session[:8]}_{os.getpid()}_{self.responses}"
        req_id = f"req_sim_{uuid.uuid4().hex[:20]}"
        usage = {
            "input_tokens": self.rng.randint(1, 40),
            "cache_creation_input_tokens": self.rng.randint(200, 4000),
            "cache_read_input_tokens": self.rng.randint(8000, 40000),
            "output_tokens": self.rng.randint(60, 900),
        }
        parts = [{"type": "text", "text": text}]
        if tool:
            parts.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", **tool})
        lines = []
        for part in [*parts, None]:
            final = part is None
            u = dict(usage) if final else {**usage, "output_tokens": 1}
            content = parts if final else [part]
            rec = {
                "parentUuid": self.parent_uuid,
                "isSidechain": False,
                "userType": "external",
                "cwd": self.cwd,
                "sessionId": self.session,
                "version": "2.1.14",
                "gitBranch": "",
                "message": {
                    "model": MODEL,
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "content": content,
                    "stop_reason": "end_turn" if final else None,
                    "stop_sequence": None,
                    "usage": {**u, "service_tier": "standard"},
                },
                "requestId": req_id,
                "type": "assistant",
                "uuid": str(uuid.uuid4()),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                + f".{int(time.time() * 1000) % 1000:03d}Z",
            }
            self.parent_uuid = rec["uuid"]
            lines.append(json.dumps(rec))
        with open(self.transcript, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        t = self.totals
        t["input"] += usage["input_tokens"]
        t["output"] += usage["output_tokens"]
        t["cache_write"] += usage["cache_creation_input_tokens"]
        t["cache_read"] += usage["cache_read_input_tokens"]
        t["responses"] += 1
        _write_json(self.usage_path, t)

    # ---- the screen -------------------------------------------------------------------------
    def transcript_lines(self) -> list[str]:
        with self.lock:
            activity = list(self.activity)
        return [f" sim-claude · {self.name}", "", *(f"⏺ {a[:90]}" for a in activity)]

    @property
    def busy_label(self) -> str:  # the fake agent's spinner, with what this one is doing
        return self.status_line or "Working"

    # ---- input ------------------------------------------------------------------------------
    def submit(self) -> None:
        text = self.input
        self.input = ""
        self.pasted_len = None
        if self.state == "waiting":
            # As in Claude Code: Enter picks the highlighted choice, "1. Yes".
            self.allowed = (text.strip() or "1") in ("1", "y", "yes")
            self.answer_event.set()
            return
        if not text.strip():
            return
        self.note(event="submit", text=text)
        self.woken.set()
        self.hook("UserPromptSubmit", prompt=text)
        first = text.splitlines()[0][:70]
        self.say(f"> {first}")
        if "kickoff" in text and not self.kickoff.is_set():
            self.say("Reading my START message and the protocol.")
            self.kickoff.set()
        else:
            # an operator's message: it is in the inbox too; answer on the screen now
            self.say("Noted; I will take that into account (it is in my inbox too).")
            self.respond(f"Acknowledged: {first}")

    def interrupt(self) -> None:
        if self.state == "busy":
            self.interrupted = True
            self.say("Interrupted by user")
            self.note(event="interrupt")
        elif self.state == "waiting":
            self.allowed = False
            self.answer_event.set()

    # ---- the loop ---------------------------------------------------------------------------
    def busy(self, line: str) -> None:
        if self.state != "busy":
            self.busy_started = time.time()
        self.state = "busy"
        self.status_line = line

    def idle(self) -> None:
        self.state = "idle"
        self.status_line = ""

    def brain(self) -> None:
        try:
            self._brain()
        except Exception as exc:  # shown, like a tool error, and the agent idles
            self.say(f"Error: {type(exc).__name__}: {exc}")
            self.note(event="error", error=repr(exc))
            self.idle()

    def _brain(self) -> None:
        self.hook("SessionStart", source="startup")
        restarted = self.marks.get("kicked_off", False)
        if not restarted:
            self.say("Waiting for the kickoff…")
            # Registered at once (the kickoff meeting waits for this first beat), then only the
            # slow beat that shows the process alive: the engine judges no agent but a busy one
            # by its silence, and a beat every heartbeat_every was a sixth of the demo's
            # `status set` calls
            self.cli("status", "set", "starting")
            while not self.kickoff.wait(SLOW_BEAT * self.heartbeat_every):
                self.cli("status", "set", "starting")
            self.mark("kicked_off")
        else:
            self.say("Restarted: picking up where I left off.")
            self.cli("lock", "release", "--all")  # what it held when it died (a new one holds none)
        last_beat = last_look = 0.0
        said_done = done = False
        last_state = ""
        tasks_seen: object = None
        while True:
            # An idle agent looks again only when its mail or the tasks changed (or it was
            # typed to), plus once in a while for a change no stat shows (none is known: a
            # safety net): polling `comm-node` three times a tick kept five idle agents' calls
            # at a core's worth of CPU, the simulated demo's (and its test's) largest cost.
            mail_now, tasks_now = self.changes()
            periodic = time.monotonic() - last_look > SAFETY_LOOK * self.heartbeat_every
            if self.new_mail(mail_now) or periodic:
                self.handle_mail()
            if tasks_now != tasks_seen or periodic:
                tasks_seen, last_look = tasks_now, time.monotonic()
                task, done = self.look()
                if task is not None:
                    said_done = False
                    self.work(task)  # one that did not close is found again by the look
                    tasks_seen = None  # look again at once after a task
                    continue
            self.idle()
            state = "done" if done else "idle"
            # Idle needs no heartbeat (the engine judges only a busy agent by its silence;
            # real Claude Code is silent while idle): the state when it changes, and a slow
            # beat that shows the process alive.
            if (
                state != last_state
                or time.monotonic() - last_beat > SLOW_BEAT * self.heartbeat_every
            ):
                last_beat, last_state = time.monotonic(), state
                self.cli("status", "set", state)
                if state == "done" and not said_done:
                    said_done = True
                    self.say("Everything in the plan is done. Waiting for mail.")
                    self.hook("Stop", stop_hook_active=False)
            self.woken.clear()
            mail_now, tasks_now = self.changes()
            if not self.new_mail(mail_now) and tasks_now == tasks_seen:
                self.woken.wait(min(1.0 / self.speed, self.heartbeat_every))

    def changes(self) -> tuple[frozenset[str], object]:
        """What says there may be new mail, and new work: the unread messages in the inbox
        folder (by name: reading one moves it out, which is no new mail); the claims and
        statuses of tasks (`.comm-node/tasks.json`, replaced on every change) and the plan's
        source. (Not the `.comm-node` folder: the engine rewrites its files all the time.)"""

        mail = _unread(os.path.join(self.private, "inbox"))
        tasks = tuple(
            _sig(p)
            for p in (
                os.path.join(self.root, ".comm-node", "tasks.json"),
                os.path.join(self.root, ".beads", "issues.jsonl"),
                os.path.join(self.root, "tasks.toml"),
            )
        )
        return mail, tasks

    def new_mail(self, unread: frozenset[str] | None = None) -> bool:
        """A message in the inbox that was not there when handle_mail() last looked."""
        if unread is None:
            unread = _unread(os.path.join(self.private, "inbox"))
        return not unread <= self.mail_seen

    def look(self) -> tuple[dict | None, bool]:
        """(the task to work on, whether the whole plan is done), from one `task list --json`:
        its `ready` column is `task ready`'s list (the agent takes this domain's in the same
        order, by priority then id), and it shows the task this agent holds (after a restart,
        or handed to it by the operator) and whether everything is closed. (A look was `task
        ready` and then `task list`: two of the demo's three most frequent calls.)"""
        tasks = self.tasks()
        if tasks is None:
            return None, False
        # the task it holds first: after a restart, or a `task done` that failed
        task = self.resume(tasks) or self.claim_ready(tasks)
        done = task is None and all(t.get("status") == "closed" for t in tasks)
        return task, done

    def tasks(self) -> list[dict] | None:
        code, tasks = self.cli("task", "list", "--json")
        return tasks if code == 0 and isinstance(tasks, list) else None

    def resume(self, tasks: list[dict] | None) -> dict | None:
        """The task this agent holds (after a restart it picks it up again)."""
        for t in tasks or ():
            if t.get("status") == "in_progress" and t.get("assignee") == self.name:
                return t
        return None

    def claim_ready(self, tasks: list[dict]) -> dict | None:
        """Claim the first of this domain's ready tasks that no one else takes first."""
        ready = [
            t
            for t in tasks
            if t.get("ready") and t.get("domain") in (None, self.name) and "id" in t
        ]
        ready.sort(key=lambda t: (t.get("priority", 2), str(t["id"])))
        for t in ready:
            code, _ = self.cli("task", "claim", t["id"], "--json")
            if code == 0:
                self.say(f"Claimed {t['id']}: {t.get('title', '')}")
                return t
            # exit 3: someone else has it; anything else: the next one may do
        return None

    def handle_mail(self) -> None:
        # taken before the look: mail that comes while it reads is seen the next time
        self.mail_seen = _unread(os.path.join(self.private, "inbox"))
        code, msgs = self.cli("inbox", "--unread", "--json")
        if code != 0 or not isinstance(msgs, list):
            return
        for m in msgs:
            self.cli("read", m["id"], "--json")  # marks it read
            self.note(event="received", id=m["id"], sender=m.get("from"), type=m.get("type"))
            body = (m.get("body") or "").strip().splitlines()
            first = body[0][:60] if body else ""
            self.say(f"Mail from {m.get('from')}: {first}")
            if m.get("type") == "question" and m.get("from") not in (None, "operator"):
                self.respond(f"Answering {m['from']}")
                answer = self.rng.choice(
                    [
                        "Yes: it is in the contract I published.",
                        "No, not yet; it lands with my next task.",
                        "Use the field names of the published artifact.",
                    ]
                )
                self.send(m["from"], f"Re: {first}\n\n{answer}", "answer", reply_to=m["id"])

    def send(self, to: str, text: str, kind: str, reply_to: str | None = None) -> None:
        args = ["send", "--to", to, "--type", kind, "--json", "-"]
        if reply_to:
            args[1:1] = ["--reply-to", reply_to]
        code, out = self.cli(*args, stdin=text)
        if code == 0 and isinstance(out, dict):
            self.note(event="sent", id=out.get("id"), to=out.get("to"), type=kind)
            self.say(f"Sent a {kind} to {to}")
        else:
            self.note(event="send_failed", to=to, code=code, out=str(out)[:200])
            self.say(f"Could not message {to} (exit {code})")

    def task_details(self, tid: str) -> dict:
        code, info = self.cli("task", "show", tid, "--json")
        if code != 0 or not isinstance(info, dict):
            return {}
        return info.get("task", info)

    def work(self, task: dict) -> bool:
        """Do `task`; True when it closed."""
        tid = task["id"]
        info = self.task_details(tid)
        desc = info.get("description") or task.get("description") or ""
        produces = _field(desc, "produces")
        touches = _field(desc, "touches")
        title = info.get("title") or task.get("title") or tid
        self.busy(f"Working on {tid}")
        self.cli("status", "set", "busy", "--task", tid, "--progress", "starting")
        patterns = [f"src/{tid}/**", *touches]
        tries = 0
        while True:
            code, out = self.cli("lock", "acquire", *patterns, "--reason", title, "--json")
            if code == 0:
                self.say(f"Locked {', '.join(patterns)}")
                break
            tries += 1
            text = str(out)
            holder = text.split(" conflicts with ", 1)[-1].split(" holds ", 1)[0].strip()
            if tries == 1:
                self.say(f"Lock refused: {holder or 'someone'} holds {', '.join(touches)}")
                if holder in self.demo.get("domains", []):
                    self.send(
                        holder,
                        f"I need {', '.join(touches)} for {tid}; please release it when done.",
                        "request",
                    )
            self.busy(f"Waiting for a lock on {', '.join(touches) or patterns[0]}")
            self.cli("status", "set", "blocked", "--task", tid, "--progress", "waiting for a lock")
            self.wait(3.0)
            if tries > 30:
                patterns = [f"src/{tid}/**"]  # give up the shared file; do the rest
        steps = self.rng.randint(2, 4)
        question_at = self.rng.randrange(steps) if self.rng.random() < 0.45 else -1
        for i in range(steps):
            if self.interrupted:
                self.interrupted = False
                self.idle()
                self.wait(1.0)
                self.busy(f"Working on {tid}")
            if tid in self.demo.get("crash", []) and i == 1 and self.mark(f"crash:{tid}"):
                self.say(f"Fatal: the simulated agent crashes on {tid}")
                self.note(event="crash", task=tid)
                self.out.flush()
                os._exit(1)
            if tid in self.demo.get("stall", []) and i == 1 and self.mark(f"stall:{tid}"):
                self.note(event="stall", task=tid)
                self.busy(f"Running a long command for {tid}")
                time.sleep(float(self.demo.get("stall_s", 20)))  # no heartbeat meanwhile
                self.note(event="unstall", task=tid)
            if self.rng.random() < float(self.demo.get("permission_rate", 0.15)):
                self.ask_permission(tid)
            path = os.path.join(self.cwd, "src", tid, f"part{i + 1}.txt")
            tool = {"name": "Edit", "input": {"file_path": path}}
            self.hook("PreToolUse", tool_name="Edit", tool_input={"file_path": path})
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(f"{title}: part {i + 1} of {steps}\n")
            for shared in touches:
                target = os.path.join(self.cwd, shared)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "a", encoding="utf-8") as fh:
                    fh.write(f"{tid} ({self.name}) step {i + 1}\n")
            self.hook("PostToolUse", tool_name="Edit", tool_input={"file_path": path})
            self.respond(f"{title}: step {i + 1} of {steps} done.", tool)
            self.cli("status", "set", "busy", "--task", tid, "--progress", f"step {i + 1}/{steps}")
            self.say(f"{tid}: step {i + 1}/{steps}")
            if i == question_at:
                peers = [p for p in self.demo.get("domains", []) if p != self.name]
                if peers:
                    peer = self.rng.choice(peers)
                    self.send(
                        peer, f"Question about {tid}: does this match what you expect?", "question"
                    )
            self.wait(self.rng.uniform(1.5, 3.5))
            if self.new_mail():
                self.handle_mail()
        args = ["task", "done", tid, "--json"]
        for name in produces:
            out_path = os.path.join(self.cwd, "src", tid, name)
            with open(out_path, "w", encoding="utf-8") as fh:
                fh.write(f"# {name}\n\nPublished by {self.name} for {tid}.\n")
            args += ["--artifact", out_path]
        code, out = self.cli(*args)
        self.say(
            f"Closed {tid}" + (f", published {', '.join(produces)}" if produces else "")
            if code == 0
            else f"Could not close {tid}: {out}"
        )
        self.cli("lock", "release", "--all")
        self.hook("Stop", stop_hook_active=False)
        self.idle()
        return code == 0

    def ask_permission(self, tid: str) -> None:
        self.state = "waiting"
        self.answer_event.clear()
        self.hook(
            "Notification",
            message="Claude needs your permission to use Bash",
            notification_type="permission_prompt",
        )
        self.note(event="permission", task=tid)
        answered = self.answer_event.wait(float(self.demo.get("permission_wait_s", 4)) / self.speed)
        allowed = self.allowed if answered else True  # nobody answered: the demo goes on
        self.say(
            "Permission "
            + ("granted" if allowed else "denied")
            + ("" if answered else " (auto, nobody answered)")
        )
        self.allowed = True
        self.busy(f"Working on {tid}")

    def on_start(self) -> None:
        # the brain does the SessionStart hook and everything after; the screen stays here
        self.note(event="start", pid=os.getpid(), session=self.session)
        threading.Thread(target=self.brain, name="sim-brain", daemon=True).start()

    def on_tick(self) -> None:
        pass  # busy and idle are the brain's to say


def _unread(inbox: str) -> frozenset[str]:
    """The names of the messages waiting in an inbox folder (read ones move to read/)."""
    try:
        return frozenset(n for n in os.listdir(inbox) if n.endswith(".md"))
    except OSError:
        return frozenset()


def _sig(path: str) -> object:
    """What changes when a file or folder does (a stat, no read)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _field(desc: str, key: str) -> list[str]:
    """`produces: a.yaml, b.md` from a task description."""
    for line in desc.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip().lower() == key:
            return [x.strip() for x in v.split(",") if x.strip()]
    return []


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sim-agent")
    p.add_argument("--name", default=os.environ.get("COMM_NODE_DOMAIN", "agent"))
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--resume", metavar="SESSION", help="continue this session (as Claude Code)")
    args = p.parse_args(argv)
    try:
        return SimAgent(args.name, args.speed, args.seed, args.resume).run()
    except SystemExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
