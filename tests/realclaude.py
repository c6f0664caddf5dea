"""The real Claude Code CLI in tests: the pinned build, offline, against the scripted model.

Each test gets a private HOME / CLAUDE_CONFIG_DIR holding the first-run settings (never the
user's ~/.claude), a private tmux server, and a workspace whose agents are real `claude`
processes started by comm-node in tmux panes. No API key, no network: the only connection
Claude Code makes is to the scripted model on 127.0.0.1.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from comm_node_tui.claude_code import TESTED_VERSION, installed_binary
from comm_node_tui.model import ScriptedModel, prepare_claude_home


def claude_binary() -> str:
    """The pinned build; a clear failure (never a skip) when it is missing."""
    path = installed_binary()
    if path is None:
        pytest.fail(
            f"Claude Code {TESTED_VERSION} is not installed: run scripts/install-claude-code.sh "
            "(./test does; it needs Node.js and npm)",
            pytrace=False,
        )
    return path


@pytest.fixture
def pinned_claude() -> str:
    return claude_binary()


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as m:
        yield m


def scripted_model(script: str, name: str) -> Callable[..., Iterator[ScriptedModel]]:
    """A module's own `model` fixture (`model = scripted_model(SCRIPT, "name")`): the built-in
    directives plus the rules of `script` (docs/model.md)."""

    @pytest.fixture(scope="module")
    def model(tmp_path_factory) -> Iterator[ScriptedModel]:
        path = tmp_path_factory.mktemp("script") / f"{name}.toml"
        path.write_text(script)
        with ScriptedModel(script=path) as m:
            yield m

    return model


@dataclass
class RealWorkspace:
    root: Path
    home: Path
    env: dict[str, str]
    model: ScriptedModel
    socket: str
    names: tuple[str, ...]
    trusted: tuple[str, ...]
    extra: dict = field(default_factory=dict)

    def dom(self, name: str) -> Path:
        return self.root / name


def write_real_workspace(
    root: Path,
    model: ScriptedModel,
    *,
    names: tuple[str, ...] = ("api", "web"),
    trusted: tuple[str, ...] | None = None,
    agents: str = "",
    mode: str = "default",
    hooks: bool = True,
) -> RealWorkspace:
    """Domains whose agent command is the real `claude` in `mode` (2.1.330's default mode
    is "auto"; "default" gives the classic permission prompts), hooks installed, the folders
    in `trusted` (default: all) trusted in the private config."""
    from comm_node_tui.adapters.claude.settings import install_hooks
    from comm_node_tui.workspace.discovery import load_workspace

    root.mkdir(parents=True)
    home = root.parent / f"{root.name}-home"
    trusted = names if trusted is None else trusted
    claude_home = prepare_claude_home(home, model.base_url, trust=[str(root / n) for n in trusted])
    # Claude Code reads its environment at start; tmux panes get the server's environment,
    # so the wrapper exports it and execs claude (real-claude-code.md).
    wrapper = root.parent / f"{root.name}-claude.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(claude_home.env.items()))
    wrapper.write_text(
        "#!/bin/sh\n"
        + exports
        + f'exec {shlex.quote(claude_binary())} --permission-mode {mode} "$@"\n'
    )
    wrapper.chmod(0o755)
    socket = f"cn-real-{os.getpid()}-{os.urandom(3).hex()}"
    parts = [
        f'[project]\nname = "real"\n[tmux]\nsocket = "{socket}"\n'
        f'[agents]\ncommand = "{wrapper}"\n{agents}\n'
    ]
    for name in names:
        (root / name).mkdir()
        (root / name / "src").mkdir()
        parts.append(f'[[domains]]\nname = "{name}"\npath = "{name}"\nscope = ["src/**"]\n')
    (root / "comm-node.toml").write_text("\n".join(parts))
    ws = load_workspace(str(root))
    if hooks:
        for dom in ws.domains.values():
            install_hooks(dom)
    env = claude_home.environ()
    return RealWorkspace(root, home, env, model, socket, names, tuple(trusted))


@pytest.fixture
def real_ws(tmp_path, model, monkeypatch) -> Iterator[Callable[..., RealWorkspace]]:
    """A factory of real-Claude workspaces; every tmux server it starts is killed after."""
    made: list[RealWorkspace] = []

    def make(**kwargs) -> RealWorkspace:
        rw = write_real_workspace(tmp_path / f"ws{len(made)}", model, **kwargs)
        monkeypatch.setenv("COMM_NODE_TMUX_SOCKET", rw.socket)
        made.append(rw)
        return rw

    yield make
    for rw in made:
        stop_agents(rw.socket)


def stop_agents(socket: str) -> None:
    """Kill every pane's process tree, then the server: Claude Code ignores the SIGHUP a
    dying tmux server sends, so killing the server alone would leave it running."""
    from comm_node_tui.panes.processes import stop_tmux_server

    stop_tmux_server(socket)


def wait_screen(panes, name: str, predicate: Callable[[str], bool], timeout: float = 30) -> str:
    """Wait until the agent's screen satisfies `predicate`; the screen."""
    from tests.waiting import describe, wait_for

    last: list[str] = [""]

    def screen_matches() -> bool:
        last[0] = panes.peek(name)
        return predicate(last[0])

    wait_for(
        screen_matches,
        timeout=timeout,
        what=f"{name}'s screen to match {describe(predicate)}",
        show=lambda: f"last screen:\n{last[0]}",
    )
    return last[0]


def prompts(model: ScriptedModel) -> list[str]:
    """What the model was asked, in order (side requests left out)."""
    return [e.prompt for e in model.requests() if e.kind == "prompt" and e.prompt]
