"""The verify gate's runner: a task's verify commands, each in its own process group, with a
timeout and a bounded output tail.

`task done` runs them before it closes a task (coordination/coordinator.py). The commands
come from the operator's own files only (comm-node.toml `[[domains]] verify`, tasks.toml
`verify`), never from an agent's text or a Beads record, which is why running them through
the shell is acceptable: the operator wrote a shell command line and expects pipes,
`&&` and globbing to work as they would in a terminal.

Bad input stays cheap: output is read as it comes and only the last `TAIL_BYTES` are kept
(a command that prints gigabytes costs this process 4 KB); a command that hangs is killed
with its whole process group at the timeout; a shell that exits while a child it put in the
background still holds the pipe does not keep the gate waiting (the group is killed when its
shell has gone). An interrupted gate (Ctrl-C, SIGTERM, SIGHUP) kills the group and closes
nothing.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

from comm_node_tui.errors import CommNodeError

TAIL_BYTES = 4096  # per command: what a refusal shows and what the overlay keeps
KILL_GRACE_S = 2.0  # SIGTERM, then this long before SIGKILL
DRAIN_S = 1.0  # after the shell exits: how long stragglers' output is still read
EXIT_VERIFY_FAILED = 5


class GateFailed(CommNodeError):
    """`task done` refused: a verify command failed or a contract artifact is missing."""

    exit_code = EXIT_VERIFY_FAILED

    def __init__(self, message: str, attempt: dict) -> None:
        super().__init__(message)
        self.attempt = attempt


class CommandResult:
    __slots__ = ("command", "exit_code", "output_bytes", "seconds", "tail", "timed_out")

    def __init__(
        self,
        command: str,
        exit_code: int | None,
        timed_out: bool,
        seconds: float,
        tail: str,
        output_bytes: int,
    ) -> None:
        self.command = command
        self.exit_code = exit_code  # None when it was killed at the timeout
        self.timed_out = timed_out
        self.seconds = seconds
        self.tail = tail  # the last TAIL_BYTES of stdout and stderr together
        self.output_bytes = output_bytes  # everything it printed, counted, not kept

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """One line: which command failed and how."""
        if self.timed_out:
            return (
                f"`{self.command}` timed out after {self.seconds:.0f} s (its processes were killed)"
            )
        code = self.exit_code
        why = {127: " (command not found)", 126: " (not executable)"}.get(code or 0, "")
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"`{self.command}` was killed by {name}"
        return f"`{self.command}` exited {code}{why}"

    def to_json(self) -> dict:
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "seconds": round(self.seconds, 3),
            "output_bytes": self.output_bytes,
        }


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _clean_text(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    # control characters (terminal escapes, carriage-return progress bars) would garble the
    # one place this is shown: a terminal or the control room
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or c.isprintable())


class _Interrupts:
    """SIGINT, SIGTERM and SIGHUP as KeyboardInterrupt, held back while a command starts:
    an interrupt inside Popen (the child already running, no Popen object yet to kill it
    by) would leave the command running, so it is raised just after, where the group is
    known."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.hold = False
        self.pending: int | None = None
        self.previous: dict[int, object] = {}

    def handler(self, signum: int, _frame: object) -> None:
        if self.hold:
            self.pending = signum
            return
        raise KeyboardInterrupt(f"signal {signum}")

    def install(self) -> None:
        for sig in self.SIGNALS:
            try:
                self.previous[sig] = signal.signal(sig, self.handler)
            except ValueError:  # not the main thread (the engine): its owner stops it
                pass

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def release(self) -> None:
        self.hold = False
        if self.pending is not None:
            raise KeyboardInterrupt(f"signal {self.pending}")


def run_command(
    command: str,
    cwd: str,
    timeout_s: float,
    tail_bytes: int = TAIL_BYTES,
    interrupts: _Interrupts | None = None,
) -> CommandResult:
    """Run one verify command; never raises for the command's own failure."""
    start = time.monotonic()
    deadline = start + timeout_s
    if interrupts is not None:
        interrupts.hold = True
    try:
        # shell=True: the operator's own command line from comm-node.toml / tasks.toml (see
        # the module docstring); never agent text. A new session = a process group of its
        # own, so a timeout or Ctrl-C can kill everything the command started.
        proc = subprocess.Popen(
            command,
            shell=True,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:  # the folder is gone, no /bin/sh: the gate fails, one line
        if interrupts is not None:
            interrupts.release()
        return CommandResult(command, 127, False, 0.0, f"cannot start: {exc}", 0)
    tail = bytearray()
    total = 0
    timed_out = False
    shell_gone_at: float | None = None
    # everything after Popen is inside the try: an interrupt at any point must kill the group
    try:
        if interrupts is not None:
            interrupts.release()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            now = time.monotonic()
            if shell_gone_at is None and proc.poll() is not None:
                # the shell has exited: whatever it left in the background goes with it
                shell_gone_at = now
                _kill_group(proc, signal.SIGKILL)
            if shell_gone_at is not None and now - shell_gone_at > DRAIN_S:
                break
            if now >= deadline:
                timed_out = proc.poll() is None
                break
            wait = min(deadline - now, 0.2)
            if not poller.poll(wait * 1000):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break  # EOF: every writer has closed the pipe
            total += len(chunk)
            tail += chunk
            if len(tail) > tail_bytes:
                del tail[: len(tail) - tail_bytes]
        if not timed_out and proc.returncode is None:
            # EOF came first (the command may have sent its output elsewhere: `exec >log`):
            # wait for the shell, still under the deadline, without reaping it, so its pid,
            # which names the group, cannot have been reused.
            while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                time.sleep(0.05)
        if timed_out:
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(proc, signal.SIGKILL)
        if proc.returncode is None:
            # the shell has exited (not reaped yet): kill what it left running in the
            # background with its output elsewhere (no EOF tells of those). When the loop
            # saw the shell exit (poll reaps), it killed the group there.
            _kill_group(proc, signal.SIGKILL)
        code = proc.wait()
    finally:
        if proc.returncode is None:  # interrupted (Ctrl-C) or an unexpected error
            _kill_group(proc, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    seconds = time.monotonic() - start
    return CommandResult(
        command, None if timed_out else code, timed_out, seconds, _clean_text(bytes(tail)), total
    )


def run_gate(commands: list[str], cwd: str, timeout_s: float) -> list[CommandResult]:
    """Each command in order, stopping at the first that fails.

    SIGTERM and SIGHUP count as Ctrl-C while it runs: the commands live in process groups of
    their own, so whoever stops this process (Claude Code's Bash tool at its timeout, a
    closed terminal) would otherwise leave them running. Either way nothing is closed."""
    if not commands:
        return []
    interrupts = _Interrupts()
    interrupts.install()
    try:
        results = []
        for command in commands:
            result = run_command(command, cwd, timeout_s, interrupts=interrupts)
            results.append(result)
            if not result.ok:
                break
        return results
    finally:
        interrupts.restore()
