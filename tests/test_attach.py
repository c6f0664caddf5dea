"""Attaching to an agent from inside tmux (issue 19, item 6), with real tmux servers on
private sockets: the agents' server (the workspace's socket), the operator's own tmux, and a
third server whose pane plays the operator's terminal (a real pty for a real client).

- From another tmux server (the usual case): a popup of the operator's tmux runs the attach,
  so `prefix d` detaches comm-node's client and the popup closes; the operator's own client
  stays attached (nested in place, the same prefix detached the operator's tmux instead).
- From the agents' own server: the client switches to the agent's window, nothing nests, and
  `prefix L` comes back.
- The plan by where the process runs, the socket paths compared for real."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comm_node_tui.panes import attach
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.waiting import wait_for

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent"


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10
    ).stdout


def terminal_clients(socket: str) -> list[str]:
    """`session:window` of each terminal client (not control-mode ones) of a server."""
    out = tmux(
        socket,
        "list-clients",
        "-F",
        "#{client_control_mode} #{client_session}:#{window_name}",
    )
    return [line[2:] for line in out.splitlines() if line.startswith("0 ")]


def sessions(socket: str) -> list[str]:
    """The session of each terminal client (the window's name follows what runs in it)."""
    return [c.split(":")[0] for c in terminal_clients(socket)]


def screen(socket: str, target: str) -> str:
    return tmux(socket, "capture-pane", "-p", "-t", target)


@pytest.fixture
def agents(tmp_path, monkeypatch):
    """One agent at its prompt on the workspace's private server."""
    socket = f"cn-att-{os.getpid()}-{os.urandom(3).hex()}"
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", socket)
    root = tmp_path / "ws"
    (root / "alpha").mkdir(parents=True)
    (root / "comm-node.toml").write_text(
        '[project]\nname = "att"\n[[domains]]\nname = "alpha"\npath = "alpha"\n'
        f'command = "{AGENT}"\n'
    )
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    wait_for(lambda: "❯" in ap.peek("alpha"), what="the agent at its prompt")
    servers = [socket]
    yield root, ap, servers
    for s in servers:
        subprocess.run(["tmux", "-L", s, "kill-server"], capture_output=True, timeout=10)


def terminal(term: str, server: str, session: str) -> None:
    """A client of `server` on `session`, in a pane of `term` (its pty is the terminal)."""
    command = f"env -u TMUX tmux -L {server} attach -t {session}"
    subprocess.run(
        ["tmux", "-L", term, "new-session", "-d", "-s", "t", "-x", "130", "-y", "45", command],
        check=True,
        timeout=10,
    )


def attach_command(root: Path, socket: str) -> str:
    """`comm-node attach alpha` as the operator types it in a shell of their tmux."""
    return (
        f"cd {shlex.quote(str(root))} && COMM_NODE_TMUX_SOCKET={socket} "
        f"{shlex.quote(sys.executable)} -m comm_node_tui attach alpha; echo ATTACH-DONE $?"
    )


def test_from_another_tmux_a_popup_and_prefix_d_comes_back(agents):
    root, ap, servers = agents
    inner = ap.tmux.socket
    outer, term = inner + "-outer", inner + "-term"
    servers += [outer, term]
    # the operator's tmux: a shell in a session, and a client of it in a terminal
    tmux(outer, "new-session", "-d", "-s", "work", "-x", "120", "-y", "40", "sh")
    terminal(term, outer, "work")
    wait_for(lambda: terminal_clients(outer) == ["work:sh"], show=lambda: screen(term, "t"))
    # comm-node attach typed in the operator's tmux (the shell there has $TMUX set)
    tmux(outer, "send-keys", "-t", "work", attach_command(root, inner), "Enter")
    session = ap.session
    wait_for(
        lambda: terminal_clients(inner) == [f"{session}:alpha"],
        what="a client of the agents' server on alpha's window",
        show=lambda: (terminal_clients(inner), screen(term, "t"), screen(outer, "work")),
    )
    assert "alpha · C-b d: back" in screen(term, "t")  # the popup's title says how
    assert "❯" in screen(term, "t")  # and the agent's screen is in it
    assert sessions(outer) == ["work"]
    # the operator presses prefix d in their terminal
    tmux(term, "send-keys", "-t", "t", "C-b", "d")
    wait_for(
        lambda: "ATTACH-DONE 0" in screen(outer, "work"),
        what="the attach command back in the operator's shell",
        show=lambda: (terminal_clients(inner), terminal_clients(outer), screen(term, "t")),
    )
    # comm-node's client went, the operator's stayed
    assert terminal_clients(inner) == []
    assert sessions(outer) == ["work"]


def test_from_the_agents_own_server_the_client_switches(agents):
    root, ap, servers = agents
    inner = ap.tmux.socket
    term = inner + "-term"
    servers.append(term)
    # the operator works in the agents' server itself (a session of their own there)
    tmux(inner, "new-session", "-d", "-s", "home", "-x", "120", "-y", "40", "sh")
    terminal(term, inner, "home")
    wait_for(lambda: terminal_clients(inner) == ["home:sh"], show=lambda: screen(term, "t"))
    tmux(inner, "send-keys", "-t", "home", attach_command(root, inner), "Enter")
    session = ap.session
    wait_for(
        lambda: terminal_clients(inner) == [f"{session}:alpha"],
        what="the one client switched to alpha's window",
        show=lambda: (terminal_clients(inner), screen(term, "t")),
    )
    # a switch returns at once: nothing nests, the command ends in the operator's shell
    wait_for(lambda: "ATTACH-DONE 0" in screen(inner, "home"), show=lambda: screen(inner, "home"))
    tmux(term, "send-keys", "-t", "t", "C-b", "L")  # tmux's last session
    wait_for(lambda: terminal_clients(inner) == ["home:sh"], show=lambda: screen(term, "t"))


def test_the_plan_by_where_it_runs(agents, tmp_path):
    _root, ap, _servers = agents
    pane = ap.pane("alpha")
    inner = attach.socket_path(ap.tmux)
    assert os.path.exists(inner)
    env = {"PATH": os.environ["PATH"]}
    outside = attach.plan(ap.tmux, pane, "alpha", env)
    assert outside.how == "attach" and outside.takes_terminal and "TMUX" not in outside.env
    # the same server named through another path (a symlinked TMUX_TMPDIR): still the same
    link = tmp_path / "tmux-link"
    link.symlink_to(os.path.dirname(inner))
    same = attach.plan(
        ap.tmux, pane, "alpha", {**env, "TMUX": f"{link}/{os.path.basename(inner)},1,0"}
    )
    assert same.how == "switch" and not same.takes_terminal
    # a server whose name merely ends like ours is another server
    other = attach.plan(ap.tmux, pane, "alpha", {**env, "TMUX": f"{inner}-outer,1,0"})
    assert other.how == "popup" and other.command[2] == f"{inner}-outer"
    assert "env -u TMUX" in other.command[-1] and inner in other.command[-1]


def test_the_room_inside_another_tmux_opens_a_popup_and_stays(agents):
    """Enter in a room that runs in the operator's tmux: the agent in a popup; prefix d
    closes it and the room is there again, the operator's client still attached."""
    root, ap, servers = agents
    inner = ap.tmux.socket
    outer, term = inner + "-outer", inner + "-term"
    servers += [outer, term]
    room = (
        f"cd {shlex.quote(str(root))} && COMM_NODE_TMUX_SOCKET={inner} "
        f"{shlex.quote(sys.executable)} -m comm_node_tui"
    )
    tmux(outer, "new-session", "-d", "-s", "work", "-x", "160", "-y", "48", room)
    terminal(term, outer, "work")
    wait_for(
        lambda: all(w in screen(term, "t") for w in ("1 Agents", "alpha", "? Help")),
        show=lambda: screen(term, "t"),
    )
    session = ap.session
    pressed = [0.0]

    def in_popup() -> bool:
        if terminal_clients(inner) == [f"{session}:alpha"]:
            return True
        if time.monotonic() - pressed[0] > 5:  # a busy machine may drop the first Enter
            tmux(term, "send-keys", "-t", "t", "Enter")
            pressed[0] = time.monotonic()
        return False

    wait_for(in_popup, show=lambda: (terminal_clients(inner), screen(term, "t")))
    assert "alpha · C-b d: back" in screen(term, "t")
    tmux(term, "send-keys", "-t", "t", "C-b", "d")
    wait_for(
        lambda: not terminal_clients(inner) and "1 Agents" in screen(term, "t"),
        show=lambda: (terminal_clients(inner), screen(term, "t")),
    )
    assert sessions(outer) == ["work"]  # the operator's own client never left
