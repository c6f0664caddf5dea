"""A small program that looks like Claude Code from the outside, for tests and the demo.

It takes the terminal in raw mode with bracketed paste on (as Claude Code does), shows the
`❯` prompt when idle, a spinner line with "esc to interrupt" while busy and a permission
question now and then, and records every submitted message exactly (JSON lines) so tests can
compare what was typed with what arrived.

Input: Enter submits, a bracketed paste is taken literally (newlines included), Escape
interrupts, Backspace edits, Ctrl-C twice exits. Submitted commands: `!busy S` (busy S
seconds), `!perm` (ask permission; `1` allows, `2` or Escape denies), `!exit N`.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time

SPINNER = "✻✳✢·✶✽"
ESC = b"\x1b"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"


class FakeAgent:
    def __init__(
        self,
        name: str,
        log: str | None,
        busy_s: float,
        hooks: bool = False,
        resume: str | None = None,
    ) -> None:
        self.hooks = hooks
        self.resumed = resume
        # like Claude Code's --resume: the conversation, and so its session id, goes on
        self.session = resume or f"fake-{os.getpid()}-{int(time.time())}"
        self.name = name
        self.log_path = log
        self.busy_s = busy_s
        self.input = ""
        self.state = "idle"  # idle | busy | waiting
        self.busy_until = 0.0
        self.busy_started = 0.0
        self.history: list[str] = []
        self.pastes = 0
        self.pasted_len: int | None = None
        self.ctrl_c = 0.0
        self.out = sys.stdout
        self._last_frame = ""

    # ---- recording ----------------------------------------------------------------------
    def record(self, **fields: object) -> None:
        if not self.log_path:
            return
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": time.time(), **fields}, ensure_ascii=False) + "\n")

    def hook(self, event: str, **fields: object) -> None:
        """Call `comm-node hook` with the JSON Claude Code sends (with --hooks)."""
        if not self.hooks:
            return
        import subprocess

        # here, not at the top: most tests start fake agents without hooks, and the import
        # (typing, the settings' defaults) was a third of the agent's own start-up
        from comm_node_tui.adapters.agent_cli import comm_node_argv

        payload = {
            "session_id": self.session,
            "transcript_path": "",
            "cwd": os.getcwd(),
            "hook_event_name": event,
            **fields,
        }
        try:
            subprocess.run(
                [*comm_node_argv(), "hook"],
                input=json.dumps(payload),
                text=True,
                capture_output=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            pass  # like Claude Code: a failing hook does not stop the agent

    # ---- screen -------------------------------------------------------------------------
    def transcript_lines(self) -> list[str]:
        """What the screen shows above the status line (the simulated agent shows more)."""
        lines = [f" fake-claude · {self.name}", ""]
        for h in self.history[-8:]:
            first = h.splitlines()[0] if h else ""
            lines.append(f"> {first[:70]}")
            lines.append("⏺ Done.")
        return lines

    busy_label = "Thinking"
    RULE = "─" * 60

    def draw(self) -> None:
        """The screen in Claude Code 2.1.330's shape: the spinner above the input box, the box
        between two rules with `❯` + NO-BREAK SPACE, the footer below; a dialog replaces the
        box while permission is asked."""
        lines = self.transcript_lines()
        lines.append("")
        if self.state == "waiting":
            lines += [
                self.RULE,
                " Bash command",
                "",
                " Do you want to proceed?",
                " ❯ 1. Yes",
                "   2. Yes, and don't ask again for: npm test",
                "   3. No",
                "",
                " Esc to cancel · Tab to amend",
            ]
        else:
            if self.state == "busy":
                secs = int(time.time() - self.busy_started)
                spin = SPINNER[int(time.time() * 4) % len(SPINNER)]
                lines.append(f"{spin} {self.busy_label}… ({secs}s · ↓ {40 * (secs + 1)} tokens)")
            shown = self.input
            if self.pasted_len is not None and ("\n" in self.input or len(self.input) > 800):
                extra = self.input.count("\n")
                shown = f"[Pasted text #{self.pastes} +{extra} lines]"
            footer = "  ⏸ manual mode on"
            if self.state == "busy" and not self.input:
                footer += " · esc to interrupt"  # Claude Code hides it while the box holds text
            lines += [self.RULE, f"❯\u00a0{shown}", self.RULE, footer]
        frame = "\r\n".join(lines)
        if frame == self._last_frame:
            return  # an idle Claude Code does not redraw either
        self._last_frame = frame
        self.out.write("\x1b[H\x1b[2J" + frame)
        self.out.flush()

    # ---- input --------------------------------------------------------------------------
    def submit(self) -> None:
        text = self.input
        self.input = ""
        self.pasted_len = None
        if self.state == "waiting":
            # As in Claude Code: Enter picks the highlighted choice, "1. Yes".
            self.answer(text.strip() or "1")
            return
        self.record(event="submit", text=text)
        self.hook("UserPromptSubmit", prompt=text)
        self.history.append(text)
        cmd = text.strip()  # comm-node sends a leading `!` after a space: plain text
        if cmd.startswith("!exit"):
            parts = cmd.split()
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.record(event="exit", code=code)
            raise SystemExit(code)
        if cmd == "!perm":
            self.state = "waiting"
            return
        seconds = self.busy_s
        if cmd.startswith("!busy"):
            parts = cmd.split()
            try:
                seconds = float(parts[1])
            except (IndexError, ValueError):
                pass
        self.start_busy(seconds)

    def start_busy(self, seconds: float) -> None:
        self.state = "busy"
        self.busy_started = time.time()
        self.busy_until = time.time() + seconds

    def answer(self, choice: str) -> None:
        allowed = choice in ("1", "y", "yes")
        self.record(event="permission", allowed=allowed)
        if allowed:
            self.start_busy(self.busy_s)
        else:
            self.state = "idle"

    def interrupt(self) -> None:
        if self.state == "busy":
            self.record(event="interrupt")
            self.state = "idle"
        elif self.state == "waiting":
            self.answer("2")

    def feed(self, data: bytes, fd: int) -> None:
        i = 0
        while i < len(data):
            if data.startswith(PASTE_START, i):
                end = data.find(PASTE_END, i)
                while end == -1:  # the paste continues in later reads
                    more = os.read(fd, 65536)
                    if not more:
                        return
                    data += more
                    end = data.find(PASTE_END, i)
                chunk = data[i + len(PASTE_START) : end]
                self.input += (
                    chunk.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
                )
                self.pastes += 1
                self.pasted_len = len(chunk)
                i = end + len(PASTE_END)
                continue
            b = data[i : i + 1]
            if b == ESC:
                if i + 1 < len(data) and data[i + 1 : i + 2] == b"[":
                    j = i + 2  # an escape sequence (arrows...): skip it
                    while j < len(data) and not (0x40 <= data[j] <= 0x7E):
                        j += 1
                    i = j + 1
                    continue
                self.interrupt()
                i += 1
                continue
            if b in (b"\r", b"\n"):
                self.submit()
            elif b == b"\x7f":
                self.input = self.input[:-1]
            elif b == b"\x03":
                now = time.time()
                if now - self.ctrl_c < 2:
                    raise SystemExit(130)
                self.ctrl_c = now
                self.input = ""
            else:
                # Take a whole UTF-8 character.
                n = 1
                lead = data[i]
                if lead >= 0xF0:
                    n = 4
                elif lead >= 0xE0:
                    n = 3
                elif lead >= 0xC0:
                    n = 2
                self.input += data[i : i + n].decode("utf-8", "replace")
                i += n
                continue
            i += 1

    def on_start(self) -> None:
        self.record(
            event="start",
            pid=os.getpid(),
            cwd=os.getcwd(),
            domain=os.environ.get("COMM_NODE_DOMAIN"),
            workspace=os.environ.get("COMM_NODE_WORKSPACE"),
            resume=self.resumed,
        )
        self.hook("SessionStart", source="resume" if self.resumed else "startup")

    def on_tick(self) -> None:
        """Four times a second: a busy spell that ran out ends, as a response does."""
        if self.state == "busy" and time.time() >= self.busy_until:
            self.state = "idle"
            self.record(event="idle")
            self.hook("Stop", stop_hook_active=False)

    def run(self) -> int:
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd) if os.isatty(fd) else None
        if old is not None:
            tty.setraw(fd)
        self.out.write("\x1b[?2004h")  # bracketed paste, as Claude Code asks for it
        self.on_start()
        try:
            self.draw()
            while True:
                ready, _, _ = select.select([fd], [], [], 0.25)
                if ready:
                    data = os.read(fd, 65536)
                    if not data:
                        return 0
                    # A lone ESC may be the start of a sequence: wait a moment for the rest.
                    if data == ESC:
                        more, _, _ = select.select([fd], [], [], 0.05)
                        if more:
                            data += os.read(fd, 65536)
                    self.feed(data, fd)
                self.on_tick()
                self.draw()
        finally:
            self.out.write("\x1b[?2004l")
            if old is not None:
                termios.tcsetattr(fd, termios.TCSADRAIN, old)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fake-agent")
    p.add_argument("--name", default=os.environ.get("COMM_NODE_DOMAIN", "agent"))
    p.add_argument("--log", default=os.environ.get("FAKE_AGENT_LOG"))
    p.add_argument("--busy", type=float, default=0.3, help="seconds busy after a message")
    p.add_argument(
        "--ignore-signals",
        action="store_true",
        help="ignore SIGHUP, SIGTERM and SIGINT (to test kill)",
    )
    p.add_argument(
        "--hooks", action="store_true", help="call `comm-node hook` as Claude Code's hooks do"
    )
    p.add_argument("--resume", metavar="SESSION", help="continue this session (as Claude Code)")
    args = p.parse_args(argv)
    if args.ignore_signals:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
    try:
        return FakeAgent(args.name, args.log, args.busy, args.hooks, args.resume).run()
    except SystemExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
