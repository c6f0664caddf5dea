"""Offline means offline: the pinned Claude Code, started by comm-node in a pane against the
scripted model (the tests and `comm-node demo`), tries nothing on the network by itself.
2.1.330 fetches its official plugin marketplace from github.com (git over https, then ssh)
a second or two after its prompt appears, unless
CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL is set (model/claude_home.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from comm_node_tui.adapters.claude.screen import read_screen
from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace
from tests.realclaude import prompts, wait_screen
from tests.waiting import wait_for


def test_claude_code_runs_no_git_or_ssh_towards_the_network(real_ws, tmp_path, monkeypatch):
    # git and ssh as Claude Code finds them (on PATH), each call written down, then the real
    # program run: the local git calls it makes are the proof that the log sees its calls.
    shims, calls = tmp_path / "shims", tmp_path / "calls.log"
    shims.mkdir()
    for name in ("git", "ssh"):
        real = shutil.which(name)
        assert real, f"{name} is not installed"
        (shims / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexec {real} "$@"\n')
        (shims / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    rw = real_ws(names=("api",))  # the panes' tmux server starts with this PATH
    ap = AgentPanes(load_workspace(str(rw.root)))
    ap.up(["api"])
    wait_screen(ap, "api", lambda s: "❯\u00a0" in s)
    # A turn: seconds of real work after the prompt, past when the fetch starts without the
    # switch (1-2 s after the prompt here).
    before = len(prompts(rw.model))
    assert ap.inject("api", "hello")["confirmed"]
    wait_for(lambda: len(prompts(rw.model)) > before, timeout=60)
    wait_screen(ap, "api", lambda s: read_screen(s).state == "idle", timeout=60)
    log = Path(calls).read_text() if Path(calls).exists() else ""
    lines = log.splitlines()
    assert any(line.startswith("git ") for line in lines), "the shims saw no git call at all"
    towards = [line for line in lines if line.startswith("ssh ") or "github.com" in line]
    assert not towards, towards
