"""The tmux control-mode client against a real tmux server on a private socket."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from comm_node_tui.adapters.tmux import PANE_FORMAT, Tmux, TmuxError, tmux_binary
from comm_node_tui.adapters.tmux_control import ControlClient, command_line, control_client, quote
from tests.waiting import wait_for

SESSION = "cn-ctl"


@pytest.fixture
def socket_name():
    name = f"cn-test-{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, timeout=10)


def tmux(socket: str, *args: str, check: bool = True, timeout: float = 10) -> str:
    res = subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=timeout
    )
    if check and res.returncode != 0:
        raise AssertionError(f"tmux {args}: {res.stderr}")
    return res.stdout.rstrip("\n")


def new_session(socket: str, command: str = "cat", size=(200, 50)) -> None:
    """A detached session whose first pane runs `command` (cat: silent until typed into)."""
    tmux(socket, "new-session", "-d", "-s", SESSION, "-x", str(size[0]), "-y", str(size[1]))
    tmux(socket, "respawn-pane", "-k", "-t", f"={SESSION}:0.0", command)


def new_pane(socket: str, how: str, target: str, *args: str) -> str:
    """A new window or split running `args`; its pane id."""
    return tmux(socket, how, "-d", "-P", "-F", "#{pane_id}", "-t", target, *args)


def pane_ids(socket: str) -> list[str]:
    return tmux(socket, "list-panes", "-s", "-t", f"={SESSION}", "-F", "#{pane_id}").split()


@pytest.fixture
def client(socket_name):
    new_session(socket_name)
    ctl = control_client(socket_name, SESSION)
    assert ctl is not None and ctl.alive
    yield ctl
    ctl.close()


def wait_for_panes(ctl: ControlClient, wanted: set[str], timeout: float = 10.0) -> set[str]:
    """Activity until every pane in `wanted` has written; all panes seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= seen and time.monotonic() < deadline:
        seen |= ctl.wait_activity(deadline - time.monotonic())
    assert wanted <= seen, f"no activity from {wanted - seen}"
    return seen


def drain(ctl: ControlClient, quiet: float = 0.3) -> None:
    """Swallow activity until the panes have been quiet for `quiet` seconds."""
    while ctl.wait_activity(quiet):
        pass


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tmux-control")]


def test_activity_comes_from_the_pane_that_wrote_only(client, socket_name):
    first = pane_ids(socket_name)[0]
    second = new_pane(socket_name, "split-window", f"={SESSION}:0", "cat")
    third = new_pane(socket_name, "new-window", f"={SESSION}:", "cat")
    drain(client)
    before = time.monotonic()
    tmux(socket_name, "send-keys", "-t", second, "hello")  # cat's terminal echoes it
    assert client.wait_activity(10) == {second}
    assert client.last_output()[second] >= before
    assert first not in client.last_output() and third not in client.last_output()
    # Coalesced: three writes before the call come back as one set.
    for pane in (first, third, first):
        tmux(socket_name, "send-keys", "-t", pane, "x")
    assert wait_for_panes(client, {first, third}) == {first, third}


def test_list_panes_with_pane_format_matches_the_subprocess_path(client, socket_name):
    first = pane_ids(socket_name)[0]
    second = new_pane(socket_name, "new-window", f"={SESSION}:", "-n", "wïn dow ❯ #1", "cat")
    tmux(socket_name, "set-option", "-p", "-t", first, "@cn_domain", "alpha")
    tmux(socket_name, "set-option", "-p", "-t", second, "@cn_domain", "b e'ta\"$x")
    tmux(socket_name, "set-option", "-p", "-t", second, "@cn_acted", "1795280000.25")
    args = ("list-panes", "-s", "-t", f"={SESSION}", "-F", PANE_FORMAT)
    over_control = client.command(*args)
    assert over_control == Tmux(socket_name, SESSION).cmd(*args)
    assert len(over_control) == 2 and over_control[1].split("\t")[1] == "b e'ta\"$x"
    assert over_control[1].count("\t") == PANE_FORMAT.count("\t")


def test_capture_pane_matches_the_subprocess_path(socket_name):
    # A screen that holds what could confuse a parser: lines looking like control-mode
    # guards and notifications, UTF-8, tabs, backslashes, colours, trailing blank rows.
    script = (
        "printf '%s\\n' '%end 1 2 1' '%output %0 fake' '%exit' 'tab\there' "
        "'❯\u00a0box ✻ Frosting…' 'back\\\\slash' \"$(printf '\\033[31mred\\033[0m')\" "
        "'last-line'; exec cat"
    )
    new_session(socket_name, f"sh -c {quote(script)}", size=(100, 30))
    ctl = control_client(socket_name, SESSION)
    assert ctl is not None
    try:
        pane = pane_ids(socket_name)[0]
        sub = Tmux(socket_name, SESSION)
        wait_for(lambda: "last-line" in sub.capture(pane), show=lambda: sub.capture(pane))
        for ansi in (False, True):
            for lines in (0, 20):
                expected = sub.capture(pane, lines=lines, ansi=ansi)
                assert ctl.capture(pane, lines=lines, ansi=ansi) == expected
        screen = ctl.capture(pane).split("\n")
        assert screen[:3] == ["%end 1 2 1", "%output %0 fake", "%exit"]
        assert "last-line" in screen
        # The raw lines equal the tmux binary's own output, trailing blank rows dropped.
        raw = subprocess.run(
            ["tmux", "-L", socket_name, "capture-pane", "-p", "-t", pane],
            capture_output=True,
            timeout=10,
        ).stdout.decode()
        assert ctl.command("capture-pane", "-p", "-t", pane) == raw.rstrip("\n").split("\n")
    finally:
        ctl.close()


@pytest.mark.parametrize(
    "value",
    [
        "#{pane_id}\t#{@cn_domain}",
        "it's",
        "$HOME ${HOME} ~ ~root",
        "a;b ; c",
        "{ } %if #comment",
        "%if",
        "%output %0 x",
        'back\\slash "double"',
        "two\nlines\r",
        "\x1b[0m\x01\x7f",
        "-looks-like-a-flag",
        " é❯ ✻ ",
    ],
)
def test_arguments_arrive_exactly_as_given(client, tmp_path: Path, value):
    out = tmp_path / "buffer"
    client.command("set-buffer", "-b", "cn-quote", "--", value)
    client.command("save-buffer", "-b", "cn-quote", str(out))
    # tmux hands the file write to the client process: the command's answer can come before
    # the file is complete (seen once in a full run under load).
    wait_for(lambda: out.exists() and out.stat().st_size >= len(value.encode()))
    assert out.read_bytes() == value.encode()


def test_an_empty_argument_is_passed_not_dropped(client):
    # display-message -p with no format prints its default line; with '' an empty one.
    assert client.command("display-message", "-p", "") == []
    assert client.command("display-message", "-p") != []


def test_errors_are_one_line_and_the_client_goes_on(client):
    with pytest.raises(TmuxError, match=r"^tmux capture-pane: can't find pane: %999$"):
        client.command("capture-pane", "-p", "-t", "%999")
    with pytest.raises(TmuxError, match="unknown command"):
        client.command("no-such-command")
    assert client.command("display-message", "-p", "#{session_name}") == [SESSION]


def test_a_late_answer_is_dropped_and_later_commands_get_their_own(client):
    # run-shell answers at once but holds the client's queue until the shell is done.
    assert client.command("run-shell", "sleep 1") == []
    with pytest.raises(TmuxError, match=r"did not answer within 0\.2 s"):
        client.command("display-message", "-p", "late", timeout=0.2)
    assert client.command("display-message", "-p", "after") == ["after"]
    assert client.alive


def test_commands_from_many_threads_get_their_own_answers(client):
    wrong: list[str] = []

    def ask(n: int) -> None:
        for k in range(40):
            want = f"t{n}-{k}"
            got = client.command("display-message", "-p", want)
            if got != [want]:
                wrong.append(f"{want}: {got}")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not wrong


@pytest.mark.parametrize("option", ["latest", "smallest"])
def test_attaching_leaves_the_window_size_alone(socket_name, option):
    new_session(socket_name, size=(173, 41))
    tmux(socket_name, "set-option", "-g", "window-size", option)
    size = ("list-windows", "-t", f"={SESSION}", "-F", "#{window_width}x#{window_height}")
    assert tmux(socket_name, *size) == "173x41"
    ctl = control_client(socket_name, SESSION)
    assert ctl is not None
    try:
        assert ctl.command(*size) == ["173x41"]
        tmux(socket_name, "new-window", "-d", "-t", f"={SESSION}:", "cat")
        assert tmux(socket_name, *size).split() == ["173x41", "173x41"]
        flags = ctl.command("list-clients", "-F", "#{client_control_mode} #{client_flags}")
        assert flags[0].startswith("1 ") and "ignore-size" in flags[0]
        assert "read-only" in flags[0]
    finally:
        ctl.close()
    assert tmux(socket_name, *size).split() == ["173x41", "173x41"]
    assert tmux(socket_name, "list-sessions", "-F", "#{session_attached}") == "0"


def test_server_killed_the_client_goes_quietly(client, socket_name):
    pid = client.pid
    assert pid is not None and reader_threads()
    cpu = time.process_time()
    tmux(socket_name, "kill-server")
    started = time.monotonic()
    while client.alive and time.monotonic() - started < 10:
        client.wait_activity(10)
    assert not client.alive
    assert time.monotonic() - started < 5
    # Nothing to wait for: it returns at once, without spinning.
    started = time.monotonic()
    for _ in range(100):
        assert client.wait_activity(5) == set()
    assert time.monotonic() - started < 1
    assert time.process_time() - cpu < 1
    with pytest.raises(TmuxError, match="control client is gone"):
        client.command("list-panes")
    client.close()
    assert not Path(f"/proc/{pid}").exists()  # reaped: no zombie left
    assert reader_threads() == []


def test_server_killed_with_sigkill(client, socket_name):
    pid = int(tmux(socket_name, "display-message", "-p", "#{pid}"))
    os.kill(pid, 9)
    started = time.monotonic()
    while client.alive and time.monotonic() - started < 10:
        client.wait_activity(10)
    assert not client.alive and time.monotonic() - started < 5
    client.close()
    assert reader_threads() == []


def test_session_killed(client, socket_name):
    tmux(socket_name, "new-session", "-d", "-s", "other", "cat")
    tmux(socket_name, "kill-session", "-t", f"={SESSION}")
    started = time.monotonic()
    while client.alive and time.monotonic() - started < 10:
        client.wait_activity(10)
    assert not client.alive
    with pytest.raises(TmuxError):
        client.command("display-message", "-p", "x")


def test_session_killed_while_tmux_would_move_the_client_elsewhere(client, socket_name):
    # detach-on-destroy off: tmux switches the client to another session instead of
    # detaching it; the client must not go on reporting that session's panes.
    tmux(socket_name, "set-option", "-g", "detach-on-destroy", "off")
    tmux(socket_name, "new-session", "-d", "-s", "other", "cat")
    tmux(socket_name, "kill-session", "-t", f"={SESSION}")
    started = time.monotonic()
    while client.alive and time.monotonic() - started < 10:
        client.wait_activity(10)
    assert not client.alive and client.exit_reason == "session gone"
    assert tmux(socket_name, "list-sessions", "-F", "#{session_name}") == "other"


def test_a_pane_that_dies_leaves_the_client_working(client, socket_name):
    tmux(socket_name, "set-option", "-g", "remain-on-exit", "on")
    dying = new_pane(socket_name, "new-window", f"={SESSION}:", "read x; echo bye; exit 3")
    other = new_pane(socket_name, "split-window", f"={SESSION}:0", "cat")
    tmux(socket_name, "send-keys", "-t", dying, "Enter")
    # Waited for by listing the panes: tmux 3.3a's pane-died hook does not always fire (a
    # `wait-for` on a channel the hook signals never returned in about 1 run in 4 with two
    # CPU hogs beside, the pane dead meanwhile; tmux/tmux#2483).
    fmt = "#{pane_id} #{pane_dead}"
    wait_for(
        lambda: (
            f"{dying} 1"
            in tmux(socket_name, "list-panes", "-s", "-t", f"={SESSION}", "-F", fmt).split("\n")
        ),
        what=f"{dying} to die",
    )
    # tmux drops output it has not sent yet when the pane's terminal closes, so a pane's
    # death may come without a last notification: dead panes are found by listing them.
    assert f"{dying} 1" in client.command("list-panes", "-s", "-F", fmt)
    tmux(socket_name, "kill-pane", "-t", other)
    assert client.alive
    panes = client.command("list-panes", "-s", "-F", fmt)
    assert f"{dying} 1" in panes and not any(p.startswith(other + " ") for p in panes)
    tmux(socket_name, "send-keys", "-t", pane_ids(socket_name)[0], "still")
    assert pane_ids(socket_name)[0] in wait_for_panes(client, {pane_ids(socket_name)[0]})


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize(
    "source", ["yes | head -c 5000000", "head -c 3000000 /dev/urandom"], ids=["yes", "binary"]
)
def test_heavy_output_neither_breaks_the_client_nor_grows_memory(client, socket_name, source):
    done = socket_name + "-done"
    pane = new_pane(socket_name, "new-window", f"={SESSION}:", "sh")
    drain(client)
    before = rss_kb()
    tmux(
        socket_name,
        "send-keys",
        "-t",
        pane,
        f"{source}; tmux -L {socket_name} wait-for -S {done}",
        "Enter",
    )
    # The pane finishes while the client keeps reading (tmux would stall it otherwise).
    waiter = subprocess.Popen(["tmux", "-L", socket_name, "wait-for", done])
    wakeups = 0
    while waiter.poll() is None:
        if pane in client.wait_activity(0.5):
            wakeups += 1
    assert waiter.wait(60) == 0
    assert client.alive and wakeups > 10
    # tmux sent us ~12 MB of escaped `yes` output: keeping it would show here.
    assert rss_kb() - before < 4_000
    assert client.command("display-message", "-p", "still here") == ["still here"]


def test_factory_gives_none_when_tmux_is_too_old(tmp_path: Path, socket_name):
    new_session(socket_name)
    old = tmp_path / "tmux"
    old.write_text(
        f'#!/bin/sh\n[ "$1" = -V ] && echo "tmux 3.1c" && exit 0\nexec {tmux_binary()} "$@"\n'
    )
    old.chmod(0o755)
    assert control_client(socket_name, SESSION, binary=str(old)) is None
    ctl = control_client(socket_name, SESSION, binary=tmux_binary())
    assert ctl is not None
    ctl.close()


def test_factory_gives_none_without_the_session_and_starts_no_server(socket_name):
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    assert control_client(socket_name, SESSION) is None
    assert not (folder / socket_name).exists()
    new_session(socket_name)
    assert control_client(socket_name, "no-such-session") is None
    with pytest.raises(TmuxError, match="can't find session"):
        ControlClient(tmux_binary(), socket_name, "no-such-session").start()


def test_close_detaches_and_leaves_no_process_or_thread(socket_name):
    new_session(socket_name)
    ctl = control_client(socket_name, SESSION)
    assert ctl is not None
    pid = ctl.pid
    ctl.close()
    ctl.close()  # twice is harmless
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert reader_threads() == []
    assert not ctl.alive and ctl.wait_activity(5) == set()
    assert tmux(socket_name, "list-clients") == ""


def test_quote_keeps_simple_words_bare():
    assert quote("list-panes") == "list-panes"
    assert quote("%12") == "%12"
    assert quote("%if") == "'%if'"
    assert quote("=cn-x:") == "=cn-x:"
    assert quote("") == "''"
    assert quote("it's") == "'it'\\''s'"
    with pytest.raises(ValueError):
        quote("a\0b")
    with pytest.raises(ValueError):
        command_line(["X=1", "list-panes"])


def test_the_quiet_client_takes_no_output_so_a_stopped_comm_node_never_blocks_a_pane(
    socket_name,
):
    """The engine's client is quiet (QUIET_FLAGS: no %output). A comm-node that stops reading
    (Ctrl-Z, a debugger) then has nothing queued that could make tmux stop reading an agent's
    pane: here a client attached with those flags is never read while a pane writes 3 MB; the
    pane finishes, and the client's pipe holds no pane output at all."""
    from comm_node_tui.adapters.tmux_control import QUIET_FLAGS

    new_session(socket_name)
    stopped = subprocess.Popen(
        ["tmux", "-L", socket_name, "-C", "attach-session", "-t", f"={SESSION}", "-f", QUIET_FLAGS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: "1" in tmux(socket_name, "list-clients", "-F", "#{client_control_mode}"),
            what="the control client to attach",
        )
        new_pane(
            socket_name,
            "new-window",
            f"={SESSION}",
            f"yes | head -c 3000000; tmux -L {socket_name} wait-for -S wrote; sleep 600",
        )
        done = subprocess.run(
            ["timeout", "60", "tmux", "-L", socket_name, "wait-for", "wrote"], capture_output=True
        )
        assert done.returncode == 0, "the pane was held up by a client that does not read"
        assert stopped.stdout is not None
        os.set_blocking(stopped.stdout.fileno(), False)
        queued = stopped.stdout.read() or b""
        assert b"%output" not in queued and b"%extended-output" not in queued
    finally:
        stopped.kill()
        stopped.wait()
