"""A tmux control-mode client: pane activity pushed at once, commands without a process each.

The screen monitor used to poll (`list-panes`, then `capture-pane` for panes with activity)
every half second, spawning a tmux client per command; what it showed lagged the screen by
the poll interval plus the spawns. `tmux -C attach-session` keeps one client open instead:
tmux writes `%output %PANE data` on its stdout the moment a pane writes, and any command
written to its stdin comes back between `%begin` and `%end` (or `%error`) lines.

How it attaches, and why (tmux 3.3a source, checked against 3.2 to 3.7):
- `-f ignore-size`: the session's windows keep their size. A control client that never sent
  `refresh-client -C` is left out of the size calculation anyway (resize.c); the flag says so
  explicitly, for tmux versions and options that might not.
- `-f read-only`: keys and mouse from this client never reach a pane. Control-mode command
  lines are not subject to it (only the command given on the command line and key bindings
  are checked, server-client.c), so `list-panes` and `capture-pane` still work; up to 3.6
  the protection against typing is that this class never sends keys (3.7 also refuses
  `send-keys` from a read-only client).
- tmux writes the client's output straight into our pipe, and when every attached client is
  a control client that is behind (512 bytes unwritten) it stops reading the panes: agents
  block on their terminal until we read. So a thread does nothing but read (a large pipe
  buffer absorbs short stalls), and keeps only the pane id of each `%output` line.
  `pause-after` does not help a consumer that stops: tmux only checks a pane's age when it
  has new output, and it no longer reads that output (measured: a `yes` pane stays blocked
  with `pause-after=2`).
- Older than 3.2 (`-f` on attach-session, `ignore-size`, `pause-after`, the control-mode
  rewrite with flow control, octal escapes in the command parser): `control_client()` gives
  None and the caller keeps polling.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import re
import select
import subprocess
import threading
import time

from comm_node_tui.adapters.tmux import (
    _DEAD_SERVER,
    TIMEOUT_S,
    TmuxError,
    tmux_binary,
    tmux_version,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

CONTROL_MIN_VERSION = (3, 2)
ATTACH_FLAGS = "ignore-size,read-only"
# Commands only: tmux sends no `%output` at all, so nothing of the panes' output ever waits
# for us. This is what the engine uses: a comm-node that is stopped (Ctrl-Z, a debugger, a
# frozen cgroup) must never stop the agents, and with `%output` on it would, once about a
# megabyte of their output had queued (tests/test_tmux_control.py shows both).
QUIET_FLAGS = ATTACH_FLAGS + ",no-output"
# Longest piece of a line read at once. `%output` lines are short in practice (tmux 3.3a
# sends at most ~8 KB of escaped data per line); past this only their start is looked at.
LINE_LIMIT = 1 << 16
# Linux lets an unprivileged process grow a pipe to 1 MiB (/proc/sys/fs/pipe-max-size): room
# for a second or more of heavy output while the reader waits for the GIL.
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
CLOSE_WAIT_S = 2.0

# Left bare: words the parser takes as they are. A word starting with `%` is a directive
# (`%if`) unless it is all digits after it (a pane id).
_SAFE = re.compile(r"%[0-9]+|[A-Za-z0-9_@=:.,/+^-][A-Za-z0-9_@%=:.,/+^-]*")
_COMMAND = re.compile(r"[a-z][a-z-]*")
_GUARD = re.compile(rb"%(begin|end|error) (\d+ \d+ \d+)\r?\n?$")


def quote(arg: str) -> str:
    """One argument for tmux's command parser, arriving exactly as given.

    Runs of ordinary characters go in single quotes (nothing is expanded there: `#{...}`,
    `$`, `~`, `;`, TAB are literal); a single quote and control characters go outside as
    escapes (`\\'`, octal), because a newline would end the command line.
    """
    if "\0" in arg:
        raise ValueError("a tmux argument cannot hold a NUL character")
    if _SAFE.fullmatch(arg):
        return arg
    out: list[str] = []
    run: list[str] = []
    for ch in arg:
        if ch == "'" or (ch < " " and ch != "\t") or ch == "\x7f":
            if run:
                out.append("'" + "".join(run) + "'")
                run = []
            out.append("\\'" if ch == "'" else f"\\{ord(ch):03o}")
        else:
            run.append(ch)
    if run or not out:
        out.append("'" + "".join(run) + "'")
    return "".join(out)


def command_line(args: tuple[str, ...] | list[str]) -> bytes:
    # A first word with `=` would set an environment variable, one with `%` a directive.
    if not args or not _COMMAND.fullmatch(str(args[0])):
        raise ValueError(f"not a tmux command name: {args[0] if args else ''!r}")
    return (" ".join(quote(str(a)) for a in args) + "\n").encode("utf-8")


def _lines(raw: list[bytes]) -> list[str]:
    """A command's output as libtmux gives it (`Tmux.cmd`): UTF-8 with backslash escapes for
    bad bytes, universal newlines, trailing empty lines dropped."""
    text = b"\n".join(raw).decode("utf-8", errors="backslashreplace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


class _Pending:
    __slots__ = ("args", "done", "error", "lines")

    def __init__(self, args: tuple[str, ...]) -> None:
        self.args = args
        self.done = threading.Event()
        self.lines: list[str] = []
        self.error: str | None = None


class ControlClient:
    """One `tmux -C` client attached to one session: pushed activity, cheap commands."""

    def __init__(
        self, binary: str, socket: str | None, session: str, *, output: bool = True
    ) -> None:
        self.binary = binary
        self.output = output  # False: commands only, no pushed activity (QUIET_FLAGS)
        self.socket = socket or None
        self.session = session
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._changed: set[str] = set()
        self._last: dict[str, float] = {}
        self._alive = False
        self._session_id: bytes | None = None
        self.exit_reason: str | None = None
        self.pid: int | None = None  # the `tmux -C` client process

    # ---- life ---------------------------------------------------------------------------
    def _argv(self, *args: str) -> list[str]:
        return [self.binary] + (["-L", self.socket] if self.socket else []) + list(args)

    def _check_session(self) -> None:
        """The session exists: attaching to a missing one would start a server on a socket
        that has none (attach-session may start the server)."""
        try:
            res = subprocess.run(
                self._argv("has-session", "-t", f"={self.session}"),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TmuxError(f"tmux has-session: {exc}") from None
        if res.returncode != 0:
            err = " ".join(res.stderr.split()) or f"can't find session: {self.session}"
            if _DEAD_SERVER.search(err):
                raise TmuxError(f"the tmux server ({self.where}) is not running")
            raise TmuxError(f"tmux has-session: {err}")

    @property
    def where(self) -> str:
        return f"socket '{self.socket}'" if self.socket else "the default tmux server"

    def start(self) -> None:
        """Attach; TmuxError (one line) when tmux refuses or the session is not there."""
        self._check_session()
        try:
            proc = subprocess.Popen(
                self._argv(
                    "-C",
                    "attach-session",
                    "-t",
                    f"={self.session}",
                    "-f",
                    ATTACH_FLAGS if self.output else QUIET_FLAGS,
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                # Buffered reads: readline() on an unbuffered pipe reads a byte at a time.
                bufsize=LINE_LIMIT,
                # Its own session: a Ctrl-C or Ctrl-Z meant for comm-node does not reach it.
                start_new_session=True,
            )
        except OSError as exc:
            raise TmuxError(f"cannot run {self.binary}: {exc}") from None
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
        os.set_blocking(proc.stdin.fileno(), False)
        self._proc = proc
        self.pid = proc.pid
        self._alive = True
        self._reader = threading.Thread(
            target=self._read_loop, name=f"tmux-control-{self.session}", daemon=True
        )
        self._reader.start()
        try:
            # The first answer proves the attach worked (its own block comes first).
            self.command("display-message", "-p", "#{client_name}")
        except TmuxError:
            reason = self.exit_reason
            self.close()
            raise TmuxError(
                f"tmux control client for session {self.session} ({self.where}) "
                f"did not start: {reason or 'no answer'}"
            ) from None

    @property
    def alive(self) -> bool:
        return self._alive

    def close(self) -> None:
        """Detach and reap the client; the reader thread ends with it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()  # EOF on its stdin: tmux detaches the client
        try:
            proc.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=CLOSE_WAIT_S)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=CLOSE_WAIT_S)
        if proc.stdout is not None:
            proc.stdout.close()
        self._gone(self.exit_reason or "closed")

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- commands -----------------------------------------------------------------------
    def command(self, *args: str, timeout: float = TIMEOUT_S) -> list[str]:
        """Run one tmux command (not one that runs others: answers are matched by order);
        its output lines as `Tmux.cmd` gives them; TmuxError on %error, timeout, dead client."""
        data = command_line(args)
        pending = _Pending(args)
        deadline = time.monotonic() + timeout
        with self._write_lock:
            with self._cond:  # checked and queued together: _gone() fails all it finds queued
                proc = self._proc
                if proc is None or not self._alive:
                    raise TmuxError(f"tmux {args[0]}: the control client is gone ({self._why()})")
                self._pending.append(pending)
            try:
                self._write(proc, data, deadline)
            except TmuxError:
                # Half a command line would corrupt every later answer: give up the client.
                self._kill(proc, f"tmux did not take the command {args[0]} in time")
                raise
        if not pending.done.wait(max(0.0, deadline - time.monotonic())):
            # Left in the queue: its late answer is matched to it and dropped.
            raise TmuxError(
                f"tmux {args[0]} did not answer within {timeout:g} s ({self.where}); "
                "is the tmux server hung?"
            )
        if pending.error is not None:
            raise TmuxError(f"tmux {args[0]}: {pending.error}")
        return pending.lines

    def capture(self, pane_id: str, lines: int = 0, ansi: bool = False) -> str:
        """The pane's screen, as `Tmux.capture` gives it."""
        args = ["capture-pane", "-p", "-t", pane_id]
        if ansi:
            args.append("-e")
        if lines:
            args += ["-S", f"-{lines}"]
        return "\n".join(self.command(*args))

    def _write(self, proc: subprocess.Popen[bytes], data: bytes, deadline: float) -> None:
        assert proc.stdin is not None
        fd = proc.stdin.fileno()
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                raise TmuxError(f"tmux control client: {exc}") from None
            view = view[n:]
            if view:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [fd], [], left)[1]:
                    raise TmuxError("tmux is not reading commands")

    # ---- activity -----------------------------------------------------------------------
    def wait_activity(self, timeout: float) -> set[str]:
        """The panes that wrote since the last call, waiting up to `timeout` for one; at once
        (maybe empty) when the client is gone."""
        with self._cond:
            if not self._changed and self._alive:
                self._cond.wait_for(lambda: self._changed or not self._alive, timeout)
            changed, self._changed = self._changed, set()
            return changed

    def last_output(self) -> dict[str, float]:
        """When each pane last wrote (time.monotonic())."""
        with self._cond:
            return dict(self._last)

    # ---- the reader ---------------------------------------------------------------------
    def _read_loop(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            self._read(proc.stdout)
        except (OSError, ValueError):
            pass  # the pipe was closed under us by close()
        finally:
            # Whatever ended the stream, nobody may wait on this client any more.
            self._gone(self.exit_reason or "tmux client exited")
        with contextlib.suppress(ChildProcessError, OSError, subprocess.TimeoutExpired):
            proc.wait(timeout=CLOSE_WAIT_S)  # reaped here too: no zombie without close()

    def _read(self, stream: IO[bytes]) -> None:
        block: list[bytes] | None = None  # lines of the %begin block being read
        guard = b""
        ours = False
        while True:
            line = stream.readline(LINE_LIMIT)
            if not line:
                return
            if not line.endswith(b"\n"):
                if block is not None:
                    # Command output is kept whole (capture lines are a screen wide).
                    while line and not line.endswith(b"\n"):
                        more = stream.readline(LINE_LIMIT)
                        line += more
                        if not more:
                            break
                else:
                    # Pane data: look at the head, drop the rest as it comes.
                    tail = line
                    while tail and not tail.endswith(b"\n"):
                        tail = stream.readline(LINE_LIMIT)
            if block is not None:
                m = _GUARD.match(line)
                if m and m.group(1) != b"begin" and m.group(2) == guard:
                    if ours:
                        self._answer(block, m.group(1) == b"error")
                    block = None
                elif ours:
                    block.append(line.rstrip(b"\n"))
                continue
            if line.startswith((b"%output ", b"%extended-output ")):
                self._activity(line)
            elif line.startswith(b"%begin "):
                m = _GUARD.match(line)
                if m:
                    block, guard = [], m.group(2)
                    ours = guard.endswith(b" 1")  # 1: a command from our stdin
            elif line.startswith(b"%exit"):
                self.exit_reason = line[5:].strip().decode(errors="replace") or "detached"
                self._gone(self.exit_reason)
            elif line.startswith(b"%session-changed "):
                self._session_changed(line)
            # %window-close, %unlinked-window-close, %sessions-changed, %layout-change and the
            # rest: the caller lists panes when it needs to.

    def _activity(self, line: bytes) -> None:
        end = line.find(b" ", line.find(b"%", 1))
        pane = line[line.find(b"%", 1) : end if end > 0 else None].rstrip(b"\n")
        name = pane.decode("ascii", errors="replace")
        now = time.monotonic()
        with self._cond:
            self._last[name] = now
            if not self._changed:
                self._cond.notify_all()
            self._changed.add(name)

    def _session_changed(self, line: bytes) -> None:
        parts = line.split(b" ", 2)
        if len(parts) < 2:
            return
        if self._session_id is None:
            self._session_id = parts[1]
        elif parts[1] != self._session_id:
            # Our session was destroyed and tmux moved us (detach-on-destroy off): we would
            # now report another session's panes.
            self.exit_reason = "session gone"
            self._gone(self.exit_reason)
            if self._proc is not None:
                self._kill(self._proc, self.exit_reason)

    def _answer(self, block: list[bytes], error: bool) -> None:
        with self._cond:
            pending = self._pending.popleft() if self._pending else None
        if pending is None:
            return
        if error:
            pending.error = " ".join(x.strip() for x in _lines(block) if x.strip()) or "failed"
        else:
            pending.lines = _lines(block)
        pending.done.set()

    def _kill(self, proc: subprocess.Popen[bytes], reason: str) -> None:
        self.exit_reason = self.exit_reason or reason
        with contextlib.suppress(OSError):
            proc.kill()

    def _gone(self, reason: str) -> None:
        with self._cond:
            was = self._alive
            self._alive = False
            if self.exit_reason is None:
                self.exit_reason = reason
            waiting, self._pending = list(self._pending), collections.deque()
            self._cond.notify_all()
        if was or waiting:
            for pending in waiting:
                if not pending.done.is_set():
                    pending.error = f"the control client is gone ({self._why()})"
                    pending.done.set()

    def _why(self) -> str:
        reason = self.exit_reason or "not started"
        if reason == "server exited unexpectedly":
            return f"the tmux server ({self.where}) is not running"
        if reason == "detached":
            return "detached: its session or the server is gone"
        return reason


def control_client(
    socket: str | None, session: str, binary: str | None = None, *, output: bool = True
) -> ControlClient | None:
    """A started control client on the session, or None when this tmux has no usable control
    mode (older than 3.2) or the client cannot attach: the caller keeps polling."""
    try:
        return start_control_client(socket, session, binary, output=output)
    except TmuxError:
        return None


def start_control_client(
    socket: str | None, session: str, binary: str | None = None, *, output: bool = True
) -> ControlClient:
    """A started control client on the session; TmuxError says why there is none."""
    binary = binary or tmux_binary()
    if tmux_version(binary) < CONTROL_MIN_VERSION:
        raise TmuxError(f"tmux older than {'.'.join(map(str, CONTROL_MIN_VERSION))}")
    client = ControlClient(binary, socket, session, output=output)
    client.start()
    return client
