"""tmux behind one small class, every call bounded.

A command runs through the session's quiet control-mode client when there is one
(adapters/tmux_control.py), else as one tmux client process whose output goes to temporary
files, never pipes, and which is killed after TIMEOUT_S. Not pipes: a tmux client hands its
stdout and stderr to the server (descriptors passed over the socket), and a stopped or hung
server keeps them open after the client is killed, so a reader waiting for the pipe's end
waits forever (libtmux, used here before, froze the room exactly so; a coreutils `timeout`
wrapper did not help). A hung server costs at most TIMEOUT_S and the caller gets a TmuxError.
Panes are found by a pane user option (`@cn_domain`), not by window names, so both layouts
work and renames do not matter.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

from comm_node_tui.errors import CommNodeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from comm_node_tui.adapters.tmux_control import ControlClient

TIMEOUT_S = 10
MIN_VERSION = (3, 0)
DOMAIN_OPTION = "@cn_domain"
# When comm-node last acted on the pane, and how ("TIME typed|interrupt|answer"): any process
# that acts sets it, and the engine reads it with the pane list (engine/agent_state.py).
ACTED_OPTION = "@cn_acted"
PANE_FORMAT = (
    "#{pane_id}\t#{" + DOMAIN_OPTION + "}\t#{pane_dead}\t#{pane_dead_status}\t"
    "#{pane_pid}\t#{window_name}\t#{pane_current_command}\t#{window_activity}\t"
    "#{" + ACTED_OPTION + "}"
)
_DEAD_SERVER = re.compile(
    r"no server running|server exited|error connecting to|"
    r"lost server|No such file or directory"
)


class TmuxError(CommNodeError):
    """tmux is missing, too old, timed out, or its server died: one line for the operator."""


def tmux_binary() -> str:
    path = shutil.which("tmux")
    if path is None:
        raise TmuxError(
            "tmux is not installed: install it (apt-get install tmux, "
            "brew install tmux) and try again"
        )
    return path


def tmux_version(binary: str | None = None) -> tuple[int, int]:
    binary = binary or tmux_binary()
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TmuxError(f"cannot run {binary} -V: {exc}") from None
    m = re.search(r"(\d+)\.(\d+)", out.stdout)
    if not m:
        if "master" in out.stdout or "next" in out.stdout:
            return (99, 0)
        raise TmuxError(f"cannot tell the tmux version from {out.stdout.strip()!r}")
    return int(m.group(1)), int(m.group(2))


def run_tmux(
    argv: list[str], timeout_s: float, data: bytes | None = None
) -> tuple[int, list[str], list[str]] | None:
    """Run a tmux client: (exit code, stdout lines, stderr lines), or None when it did not
    finish within `timeout_s` (killed). Output goes to temporary files (see the module
    docstring: a pipe can outlive the killed client); lines as tmux's own client prints them,
    UTF-8 with backslash escapes for bad bytes, trailing empty lines dropped."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as feed,
    ):
        stdin: int | IO[bytes] = subprocess.DEVNULL
        if data is not None:
            feed.write(data)
            feed.seek(0)
            stdin = feed
        try:
            res = subprocess.run(argv, stdin=stdin, stdout=out, stderr=err, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        out.seek(0)
        err.seek(0)
        return res.returncode, _split(out.read()), [x for x in _split(err.read()) if x]


def _split(raw: bytes) -> list[str]:
    # Universal newlines, then "\n" only: str.splitlines() would also split on form feeds
    # and other separators a pane's text may hold (the control client reads the same way).
    text = raw.decode("utf-8", errors="backslashreplace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


class Pane:
    __slots__ = (
        "acted",
        "acted_kind",
        "activity",
        "command",
        "dead",
        "dead_status",
        "domain",
        "id",
        "pid",
        "window",
    )

    def __init__(self, line: str) -> None:
        parts = (line.split("\t") + [""] * 9)[:9]
        self.id, self.domain = parts[0], parts[1]
        self.dead = parts[2] == "1"
        self.dead_status = int(parts[3]) if parts[3].lstrip("-").isdigit() else None
        self.pid = int(parts[4]) if parts[4].isdigit() else None
        self.window, self.command = parts[5], parts[6]
        self.activity = int(parts[7]) if parts[7].isdigit() else 0
        # "TIME KIND" (KIND: typed, interrupt, answer); a bare time from older comm-nodes.
        when, _, kind = parts[8].partition(" ")
        try:
            self.acted: float | None = float(when) if when else None
        except ValueError:
            self.acted = None
        self.acted_kind: str | None = kind or None
        if self.dead and self.dead_status is None and self.pid:
            self.dead_status = _zombie_status(self.pid)


def _zombie_status(pid: int) -> int | None:
    """The exit status of a pane process tmux has not reaped yet (seen under load: tmux
    marks the pane dead on pty EOF, and the SIGCHLD reaping can lag or be missed).
    Linux keeps it in the zombie's /proc/PID/stat (field 52, waitpid form)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().decode(errors="replace").rsplit(")", 1)[1].split()
    except OSError:
        return None
    if not fields or fields[0] != "Z" or len(fields) < 50:
        return None
    code = int(fields[-1]) if fields[-1].isdigit() else None
    if code is None or code & 0x7F:  # killed by a signal: no exit status
        return None
    return code >> 8


class Tmux:
    """One tmux server (socket) and one session on it."""

    def __init__(self, socket: str | None, session: str, timeout_s: float = TIMEOUT_S) -> None:
        self.binary = tmux_binary()
        version = tmux_version(self.binary)
        if version < MIN_VERSION:
            raise TmuxError(
                f"tmux {version[0]}.{version[1]} is too old: comm-node needs "
                f"{MIN_VERSION[0]}.{MIN_VERSION[1]} or newer"
            )
        self.socket = socket or None
        self.session = session
        self.timeout_s = timeout_s
        # A quiet control-mode client (adapters/tmux_control.py), when use_control() got one:
        # commands then cost a line on a pipe instead of a tmux process each.
        self.control: ControlClient | None = None
        self.control_problem: str | None = None  # why the last attach failed

    def use_control(self) -> bool:
        """Send this object's commands through one quiet control-mode client on the session
        (no process per command, no pane output taken); False when this tmux cannot (too old,
        no session yet): commands keep running a tmux client each."""
        from comm_node_tui.adapters.tmux_control import start_control_client

        self.close()
        try:
            self.control = start_control_client(
                self.socket, self.session, self.binary, output=False
            )
        except TmuxError as exc:
            self.control_problem = str(exc)  # kept for the engine's event: why it polls
            return False
        self.control_problem = None
        return True

    def close(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            control.close()

    @property
    def where(self) -> str:
        return f"socket '{self.socket}'" if self.socket else "the default tmux server"

    def cmd(self, *args: str, check: bool = True) -> list[str]:
        """Run one tmux command; its stdout lines; TmuxError on failure."""
        control = self.control
        if control is not None and control.alive:
            try:
                return control.command(*args)
            except TmuxError:
                if control.alive:  # tmux's own answer (%error), as the process path gives it
                    if not check:
                        return []
                    raise
                # The client went away (session or server gone): ask a tmux process, whose
                # errors say which.
        argv = [self.binary, *(["-L", self.socket] if self.socket else []), *map(str, args)]
        try:
            res = run_tmux(argv, self.timeout_s)
        except OSError as exc:  # the binary went away, no file descriptors left, ...
            raise TmuxError(f"tmux {args[0]}: {exc}") from None
        if res is None:
            raise TmuxError(
                f"tmux {args[0]} did not answer within {self.timeout_s:g} s "
                f"({self.where}); is the tmux server hung?"
            )
        _code, stdout, stderr = res
        if check and stderr:
            err = " ".join(stderr)
            if _DEAD_SERVER.search(err):
                raise TmuxError(
                    f"the tmux server ({self.where}) is not running: start the "
                    "agents with `comm-node up`"
                )
            raise TmuxError(f"tmux {args[0]}: {err}")
        return stdout

    def run_stdin(self, args: list[str], data: bytes) -> None:
        """A tmux command that reads standard input (load-buffer), with a timeout."""
        full = [self.binary] + (["-L", self.socket] if self.socket else []) + args
        try:
            res = run_tmux(full, self.timeout_s, data)
        except OSError as exc:
            raise TmuxError(f"tmux {args[0]}: {exc}") from None
        if res is None:
            raise TmuxError(f"tmux {args[0]} did not answer within {self.timeout_s:g} s")
        code, _out, err = res
        if code != 0:
            raise TmuxError(f"tmux {args[0]}: {' '.join(err) or 'failed'}")

    # ---- queries ------------------------------------------------------------------------
    def has_session(self) -> bool:
        try:
            self.cmd("has-session", "-t", f"={self.session}")
            return True
        except TmuxError as exc:
            if (
                "not running" in str(exc)
                or "can't find session" in str(exc)
                or "no such session" in str(exc)
                # tmux 3.3's answer while its last session is going (a server with no
                # session left): seen right after `down` in a full run
                or "no current target" in str(exc)
            ):
                return False
            raise

    def require_session(self) -> None:
        """TmuxError saying whether the server or just the session is missing."""
        try:
            self.cmd("has-session", "-t", f"={self.session}")
        except TmuxError as exc:
            if "not running" in str(exc):
                raise
            raise TmuxError(
                f"there is no tmux session {self.session} on {self.where}: "
                "start the agents with `comm-node up`"
            ) from None

    def panes(self) -> dict[str, Pane]:
        """The session's agent panes by domain (the last one wins if doubled)."""
        if not self.has_session():
            return {}
        out = {}
        for line in self.cmd("list-panes", "-s", "-t", f"={self.session}", "-F", PANE_FORMAT):
            pane = Pane(line)
            if pane.domain:
                out[pane.domain] = pane
        return out

    def capture(self, pane_id: str, lines: int = 0, ansi: bool = False) -> str:
        """The pane's screen (and `lines` of history above it)."""
        args = ["capture-pane", "-p", "-t", pane_id]
        if ansi:
            args.append("-e")
        if lines:
            args += ["-S", f"-{lines}"]
        return "\n".join(self.cmd(*args))
