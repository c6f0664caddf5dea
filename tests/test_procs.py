"""Which process is the agent: the nearest `claude` above a hook, by pid and start time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from comm_node_tui.protocol.procs import agent_process, is_alive, start_time

PROBE = (
    "import json; from comm_node_tui.protocol.procs import agent_process, under_agent;"
    "me = agent_process(); print(json.dumps([me, under_agent(me[0]) if me else None,"
    " under_agent(2**22 + 12345)]))"
)


def test_a_hook_finds_its_claude_and_a_nested_one_sees_the_outer(tmp_path):
    claude = tmp_path / "claude"
    claude.symlink_to("/bin/sh")  # a process named `claude`, like the real binary
    # claude -> sh -c (the hook) -> python: the claude process is found two levels up
    cmd = f"{sys.executable} -c {json.dumps(PROBE)}"
    proc = subprocess.Popen(
        [str(claude), "-c", f"sh -c {json.dumps(cmd)}; true"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    out, _ = proc.communicate(timeout=30)
    (pid, start), nested, vanished = json.loads(out)
    assert pid == proc.pid  # the `claude` process itself, two levels above the probe
    assert start > 0 and not nested
    # a process that is gone (no parent to read) is under no agent, even from inside one
    assert vanished is False
    # a claude run under another claude (an agent's own `claude -p`) knows it
    inner = tmp_path / "inner" / "claude"
    inner.parent.mkdir()
    inner.symlink_to("/bin/sh")
    out = subprocess.run(
        [str(claude), "-c", f"{inner} -c {json.dumps(cmd)}; true"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    _me, nested, _vanished = json.loads(out.stdout)
    assert nested is True


def test_not_under_claude_and_a_recycled_pid():
    assert agent_process() is None  # pytest is not run by Claude Code here
    me = os.getpid()
    assert is_alive(me, start_time(me)) is True
    assert is_alive(me, start_time(me) + 1) is False  # same pid, another process
    assert is_alive(2**22 + 12345) is False
