"""Shared fixtures: real workspaces in temporary directories and the real `comm-node` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from comm_node_tui.engine.engine import Engine
from comm_node_tui.workspace.discovery import load_workspace

DEFAULT_DOMAINS = ("backend", "frontend", "docs")


def write_workspace(
    root: Path,
    domains=DEFAULT_DOMAINS,
    extra: str = "",
    budget: int = 0,
    domain_extra: dict[str, str] | None = None,
    agents: str = "",
    cached: bool = True,
) -> Path:
    """A workspace with one directory per domain; budget 0 = unlimited.

    `cached`: with its config cache, as any comm-node command leaves a workspace it loaded.
    Built here, in the worker, where pydantic is loaded: the test's first agent call (a hook,
    a claim, a send) then does not import pydantic and the models, ~0.2 s of CPU per test
    in a subprocess, ~30 s of the suite's (tests that watch the first call build it
    themselves: cached=False). A config a test means to be invalid gets none."""
    root.mkdir(parents=True, exist_ok=True)
    parts = [
        f'[project]\nname = "test-proj"\n\n[agents]\nbudget_tokens = {budget}\n{agents}\n',
        extra,
    ]
    for name in domains:
        (root / name).mkdir(exist_ok=True)
        more = (domain_extra or {}).get(name, "")
        parts.append(
            f'\n[[domains]]\nname = "{name}"\npath = "{name}"\nrole = "the {name} role"\n{more}\n'
        )
    (root / "comm-node.toml").write_text("\n".join(parts))
    if cached:
        from comm_node_tui.errors import CommNodeError

        with contextlib.suppress(CommNodeError):
            load_workspace(str(root))
    return root


def pytest_collection_modifyitems(session, config, items):
    """The longest tests first (tests/durations.json, refreshed by scripts/test-durations.py),
    the rest in file order: ./test hands tests to the workers one at a time
    (--maxschedchunk 1), so this is longest-first list scheduling, and no 35 s test starts
    when the others are about to finish."""
    path = Path(__file__).with_name("durations.json")
    try:
        seconds = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # only the order is lost
    known = [it for it in items if it.nodeid in seconds]
    known.sort(key=lambda it: -seconds[it.nodeid])  # stable: same input, same order
    rest = [it for it in items if it.nodeid not in seconds]
    # xdist's load scheduler starts each worker with two tests in list order (items 0 and 1
    # to the first, 2 and 3 to the next...), the second queued behind the first: the two
    # longest ran one after the other on one worker (the headless demo, 24 s of CPU, began
    # at 50 s, while the first 20 s kept only 1.45 cores busy). So each worker's first pair
    # is one of the N longest, then one of the next N.
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    if workers > 1 and len(known) >= 2 * workers:
        first, second = known[:workers], known[workers : 2 * workers]
        known[: 2 * workers] = [it for pair in zip(first, second, strict=True) for it in pair]
    items[:] = known + rest


def pytest_collection_finish(session):
    """Less of the workers' CPU to the garbage collector. What collection imported (pytest,
    Textual, pydantic, comm-node and every test module: ~120,000 objects) lives to the end:
    frozen, no full collection walks it again (tests/test_uncollected.py thaws it and
    freezes again). And a young collection every 20,000 allocations instead of 700: the
    rooms' renders allocate by the million. In test_control_room.py and test_room_panels.py
    run in one process, the collector took 6.0 s of 18.3 s of CPU before, 4.7 s with the
    Textual fix in uikit/, and 1.2 s of 13.5 s with this as well."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


@pytest.fixture
def ws_root(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


@pytest.fixture
def make_ws(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(**kwargs) -> Path:
        return write_workspace(tmp_path / f"ws{next(counter)}", **kwargs)

    return make


PRIVATE_SOCKET = f"cn-test-default-{os.getpid()}"


def pytest_sessionfinish(session, exitstatus):
    """The last net for tmux: every private socket a test makes names this process's pid
    (`cn-<kind>-<pid>...`); any tmux process of one still alive now is killed. (Seen: a room
    killed with its terminal left its control client orphaned, and the agents' server then
    hung in kill-server: "server exited unexpectedly" to every later client.)"""
    import re
    import signal

    mine = re.compile(rf"cn-[a-z-]+-{os.getpid()}(?:-|$)")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) != "tmux" or "-L" not in argv[:-1]:
            continue
        if mine.match(argv[argv.index("-L") + 1]):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(autouse=True)
def private_tmux(monkeypatch):
    """Every test talks to a private tmux server, never the user's default one (tests that
    start agents set their own socket on top of this)."""
    monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", PRIVATE_SOCKET)
    yield
    # only when a server was started: most tests start none, and a tmux client per test
    # (~3 ms of CPU, ~1,000 tests) was spent saying so
    if os.path.exists(_PRIVATE_SOCKET_PATH):
        subprocess.run(
            ["tmux", "-L", PRIVATE_SOCKET, "kill-server"], capture_output=True, timeout=10
        )
        with contextlib.suppress(OSError):
            os.unlink(_PRIVATE_SOCKET_PATH)  # tmux 3.3 leaves it after kill-server


# Where tmux keeps the socket of `-L PRIVATE_SOCKET` (tmux(1): $TMUX_TMPDIR or /tmp, then
# tmux-UID/).
_PRIVATE_SOCKET_PATH = os.path.join(
    os.environ.get("TMUX_TMPDIR") or "/tmp", f"tmux-{os.getuid()}", PRIVATE_SOCKET
)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a comm-node subprocess: no workspace or domain leaking in from
    the test run, but the private tmux socket kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMM_NODE_")}
    env["COMM_NODE_TMUX_SOCKET"] = os.environ.get("COMM_NODE_TMUX_SOCKET", PRIVATE_SOCKET)
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: Path | str,
    input: str | None = None,
    env: dict | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as an agent runs it: the installed `comm-node` script
    (its entry point's fast paths for `hook` and `send` included), not `python -m`."""
    from comm_node_tui.adapters.agent_cli import comm_node_argv

    return subprocess.run(
        [*comm_node_argv(), *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else cli_env(),
    )


def queue(dom, to: str | list[str], body: str) -> str:
    """An agent's message in its outbox, as `comm-node send` writes it; its id."""
    from comm_node_tui.protocol.mailbox import write_outbox
    from comm_node_tui.protocol.messages import new_message_id, now_iso

    ident = new_message_id()
    write_outbox(
        dom.paths,
        {
            "id": ident,
            "from": dom.name,
            "to": [to] if isinstance(to, str) else to,
            "type": "info",
            "created": now_iso(),
        },
        body,
    )
    return ident


def start_serve(root: Path | str, **popen) -> subprocess.Popen:
    """`comm-node serve` on a workspace, in its own process (stderr kept for the test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "serve", "--workspace", str(root), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        **popen,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


@pytest.fixture
def engine_for():
    """An in-process engine on a workspace, started (no watcher) and stopped after the test."""
    engines: list[Engine] = []

    def make(root: Path, **kwargs) -> Engine:
        eng = Engine(load_workspace(str(root)), **kwargs)
        eng.start()
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.stop()


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# The real Claude Code CLI against the scripted model (tests/realclaude.py); the wait
# helpers of tests/waiting.py, importable from here too for tests written before it.
from tests.realclaude import model, pinned_claude, real_ws  # noqa: E402, F401
from tests.waiting import until, wait_for  # noqa: E402, F401
