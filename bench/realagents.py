"""Real agents for the by-hand benchmarks (bench/real_soak.py, receipts.py, ready_to_turn.py):
the pinned Claude Code, offline against the scripted model, in a workspace of its own on a
private tmux server, and the engine in this process as `comm-node serve` runs it.

One set-up for the three, so they measure the same agents and a fix (which folders Claude
Code must trust, what environment a pane gets, how the agents are stopped) reaches all of
them. tests/realclaude.py does the same for the tests, with pytest's failures and fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def claude_binary(install: bool = False) -> str:
    """The pinned build; with `install`, installed first when it is missing."""
    from comm_node_tui.claude_code import TESTED_VERSION, installed_binary

    path = installed_binary()
    if path is None and install:
        print(f"installing Claude Code {TESTED_VERSION} (scripts/install-claude-code.sh)...")
        subprocess.run([str(REPO / "scripts" / "install-claude-code.sh")], check=True)
        path = installed_binary()
    if path is None:
        sys.exit(f"Claude Code {TESTED_VERSION} is not installed (scripts/install-claude-code.sh)")
    return path


def private_environ(socket: str) -> None:
    """This process runs the engine and starts the tmux server, which hands its environment
    to the panes: nothing of the user's Claude Code, workspace or tmux may reach them."""
    drop = ("ANTHROPIC_", "CLAUDE", "COMM_NODE_", "XDG_CONFIG_", "XDG_DATA_", "XDG_CACHE_")
    for key in list(os.environ):
        if key.startswith((*drop, "XDG_STATE_")) or key in ("TMUX", "TMUX_PANE"):
            del os.environ[key]
    os.environ["COMM_NODE_TMUX_SOCKET"] = socket


def write_real_workspace(
    tmp: Path,
    base_url: str,
    names: list[str],
    socket: str,
    *,
    project: str,
    claude: str,
    agents: str = "",
    domain: Callable[[str], str] | None = None,
    agentless: tuple[str, ...] = (),
    tasks: str | None = None,
    git: bool = True,
):
    """`tmp`/ws: one domain per name (scope src/**) whose agent is `claude` in default
    permission mode, trusted in a private config under `tmp`/home, hooks installed; (root,
    ClaudeHome). `agents` adds lines to [agents], `domain(name)` to a domain's table;
    `agentless` domains (scope **) are for the bench's own CLI calls; `tasks` is a native
    tasks.toml; `git` makes the root a repository."""
    from comm_node_tui.adapters.claude.settings import install_hooks
    from comm_node_tui.model import prepare_claude_home
    from comm_node_tui.workspace.discovery import load_workspace

    root = tmp / "ws"
    root.mkdir(parents=True)
    # With the folder inside a git repository, Claude Code 2.1.330 asks about the
    # `permissions.allow` rules install_hooks writes ("This folder pre-approves 2 tool
    # permissions") unless the repository's root is trusted too; the domain alone does not do.
    trust = [*([str(root)] if git else []), *(str(root / n) for n in names)]
    home = prepare_claude_home(tmp / "home", base_url, trust=trust)
    (tmp / "claude-tmp").mkdir()
    wrapper = tmp / "claude.sh"
    # A tmux server passes its own environment to new panes: the wrapper sets claude's.
    exports = "".join(
        f"export {k}={shlex.quote(v)}\n"
        for k, v in sorted({**home.env, "TMPDIR": str(tmp / "claude-tmp")}.items())
    )
    wrapper.write_text(
        "#!/bin/sh\n" + exports + f'exec {shlex.quote(claude)} --permission-mode default "$@"\n'
    )
    wrapper.chmod(0o755)
    parts = [
        f'[project]\nname = "{project}"\n[tmux]\nsocket = "{socket}"\n'
        f'[agents]\ncommand = "{wrapper}"\n{agents}'
        + ('[tasks]\nsource = "native"\n' if tasks is not None else "")
    ]
    for name in names:
        (root / name / "src").mkdir(parents=True)
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{name}"\nscope = ["src/**"]\n'
            + (domain(name) if domain else "")
        )
    for name in agentless:
        (root / name).mkdir()
        parts.append(f'[[domains]]\nname = "{name}"\npath = "{name}"\nscope = ["**"]\n')
    (root / "comm-node.toml").write_text("\n".join(parts))
    if tasks is not None:
        (root / "tasks.toml").write_text(tasks)
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    ws = load_workspace(str(root))
    for dom in ws.domains.values():
        install_hooks(dom)
    return root, home


def stop_agents(socket: str) -> None:
    """Kill every pane's process tree, then the server, then its socket file: Claude Code
    ignores the SIGHUP a dying tmux server sends, so killing the server alone would leave
    the agents running."""
    from comm_node_tui.panes.processes import stop_tmux_server

    stop_tmux_server(socket)
    socket_dir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (socket_dir / socket).unlink()  # a killed server may leave its socket file


def wait_until(check: Callable[[], T], timeout: float, every: float = 0.05) -> T:
    """`check()` until it is truthy or `timeout` has passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)  # polling interval: the screens and files have no event to wait on


def at_rest(panes, name: str) -> bool:
    """The agent is idle at its prompt with nothing in the box."""
    from comm_node_tui.adapters.claude.screen import read_screen

    s = read_screen(panes.peek(name))
    return s.state == "idle" and s.input is not None and not s.input.strip()


def read_events(ws) -> list[dict]:
    """Every event of the workspace's log (rotated files too), oldest first."""
    from comm_node_tui.protocol.events import log_files

    out = []
    for path in log_files(ws.paths.events):
        with open(path, "rb") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
    return out


def iso_ts(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


class EngineThread:
    """The real engine on a loop of its own in this process, as `comm-node serve` runs it."""

    def __init__(self, ws) -> None:
        from comm_node_tui.engine.engine import Engine

        self.engine = Engine(ws)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.crash: str | None = None
        self.thread = threading.Thread(target=self._main, name="engine", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.engine.start()  # as serve does: WorkspaceBusy at once if another engine
            self.ready.set()
            await self.engine.run(self._stop)

        try:
            asyncio.run(main())
        except BaseException:
            self.crash = traceback.format_exc()
        finally:
            self.ready.set()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)
        if self.crash:
            raise RuntimeError(f"the engine did not start:\n{self.crash}")

    def call(self, fn, timeout: float = 20.0):
        """Run `fn` on the engine's loop (its data is only touched from there)."""

        async def run():
            return fn()

        if self.loop is None or not self.thread.is_alive():
            raise RuntimeError("the engine is not running")
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self.thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(30)
