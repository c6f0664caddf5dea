"""The layers, enforced: each package imports only from its own layer or the ones below, and
the agents' hot paths (`comm-node hook`, `comm-node send`) load nothing heavy.

protocol <- workspace <- coordination <- usage <- (adapters, boundaries, model) <- hooks <-
panes <- integration <- engine <- uikit <- kickoff <- operator <- tui <- demo <- web <- commands.
`cli.py` declares the parser and dispatches by name (it imports no command module), so it sits low:
the kickoff renders PROTOCOL.md from it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_workspace

PACKAGE = Path(__file__).resolve().parent.parent / "comm_node_tui"

LAYERS: list[set[str]] = [
    {"errors", "claude_code", "__init__"},
    {"cli"},
    {"protocol"},
    {"workspace"},
    {"cluster"},  # NATS for [cluster]: coordination decides through it, the engine relays
    {"coordination"},
    # usage reads Claude Code's transcripts; the Claude adapter hands its tracker out
    # (AgentCli.usage), so usage sits just below the adapters and never imports them.
    {"usage"},
    {"adapters", "boundaries", "model"},
    {"hooks"},
    {"panes"},
    # review, the merge queue, conflict warnings: git and the domains' work, run by the
    # engine and called by the CLI and the room
    {"integration"},
    {"engine"},
    {"uikit"},  # Textual pieces the wizard and the room share
    {"kickoff"},
    {"operator"},  # the room's interventions as one service, below the UI that calls it
    {"tui"},
    {"demo"},
    {"web"},  # `comm-node web`: the room behind a token; aiohttp only from here up
    {"commands", "__main__", "entry"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[tuple[str, int]]:
    """The comm_node_tui packages a module imports (at any depth: lazy imports count)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "comm_node_tui" and len(parts) > 1:
                out.append((parts[1], node.lineno))
    return out


def test_every_package_has_a_layer():
    parts = {part_of(p) for p in PACKAGE.rglob("*.py")}
    assert parts - set(RANK) == set(), "place new packages in tests/test_layers.py LAYERS"


def test_no_package_imports_from_a_layer_above_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = part_of(path)
        for target, line in imports(path):
            if target != me and RANK.get(target, 99) > RANK[me]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line}: {me} -> {target}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


# dataclasses and inspect are the standard library's, but inspect costs ~10 ms a call: the typed
# settings the hot path builds are made without them (workspace/settings.py)
HEAVY = (
    *("pydantic", "textual", "libtmux", "watchfiles", "git", "yaml", "pathspec", "rich", "nats"),
    *("dataclasses", "inspect"),
)


def _loaded_by(args: list[str], stdin: str, cwd: Path) -> set[str]:
    code = (
        "import sys, json\n"
        "from comm_node_tui.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & set(%r))\n"
        "sys.stderr.write(json.dumps(heavy))\n" % (HEAVY,)
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return set(json.loads(res.stderr.strip().splitlines()[-1]))


def test_the_hook_and_the_agent_cli_load_nothing_heavy(tmp_path):
    root = write_workspace(tmp_path / "ws")
    cwd = root / "backend"
    # the first call builds the config cache (pydantic, once); later calls must not
    subprocess.run(
        [sys.executable, "-m", "comm_node_tui", "whoami"], cwd=cwd, capture_output=True, timeout=60
    )
    payload = json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "session_id": "s1",
            "cwd": str(cwd),
            "tool_name": "Edit",
            "tool_input": {"file_path": str(cwd / "x.py"), "old_string": "a", "new_string": "b"},
        }
    )
    assert _loaded_by(["hook"], payload, cwd) == set()
    assert _loaded_by(["send", "--to", "frontend", "hello"], "", cwd) == set()
