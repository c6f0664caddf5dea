"""comm-node.toml: the documented keys, strict validation, one-line errors, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from comm_node_tui.errors import ConfigError
from comm_node_tui.workspace.config import dump_config, load_config, parse_config
from tests.conftest import dedent

FULL = dedent("""
    [project]
    name = "user-auth"
    [agents]
    command = "claude"
    budget_tokens = 200000
    heartbeat_stale_s = 60
    heartbeat_lost_s = 120
    [tmux]
    socket = ""
    session = "cn-user-auth"
    [tasks]
    source = "beads"
    path = ".beads/issues.jsonl"
    [[domains]]
    name = "backend"
    path = "backend"
    role = "Implements the auth API"
    scope = ["src/**"]
    exports = ["api-contract.yaml"]
    imports = { shared = ["types.ts"] }
    allowed_imports = []
    forbidden_imports = []
    command = "claude --model sonnet"
    budget_tokens = 300000
    [[domains]]
    name = "shared"
    path = "/abs/shared"
""")


def test_issue_example_parses_with_every_key():
    cfg = parse_config(FULL)
    be = cfg.domains[0]
    assert cfg.project.name == "user-auth"
    assert cfg.tasks.source == "beads" and cfg.tasks.path == ".beads/issues.jsonl"
    assert be.imports == {"shared": ["types.ts"]}
    assert be.command == "claude --model sonnet" and be.budget_tokens == 300000
    assert cfg.domains[1].scope == ["**"]  # default: the whole directory
    assert cfg.session_name() == "cn-user-auth"


def test_round_trip_keeps_meaning():
    cfg = parse_config(FULL)
    again = parse_config(dump_config(cfg))
    assert again == cfg
    assert again.model_dump() == cfg.model_dump()


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    return err.value.problems


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[project]\nname="p"\nbogus=1\n', "comm-node.toml: project.bogus: unknown key"),
        (
            '[project]\nname="p"\n[[domains]]\nname="Back End"\npath="b"\n',
            "comm-node.toml: domains[0] (Back End).name: 'Back End' must match",
        ),
        (
            '[project]\nname="p"\n[[domains]]\nname="a"\npath="x"\n[[domains]]\nname="a"\npath="y"\n',
            "domain 'a' is defined twice",
        ),
        ('[project]\nname="p"\n[[domains]]\nname="a"\n', "domains[0] (a).path: required key"),
        ("[project\nname=1", "comm-node.toml: invalid TOML"),
        ('[agents]\ncommand="x"\n', "comm-node.toml: project: required key is missing"),
        (
            '[project]\nname="p"\n[agents]\nheartbeat_stale_s=100\nheartbeat_lost_s=50\n',
            "heartbeat_lost_s (50) must be greater than heartbeat_stale_s (100)",
        ),
        (
            '[project]\nname="p"\n[[domains]]\nname="a"\npath="a"\nimports={ghost=["x"]}\n',
            "imports from unknown domain 'ghost'",
        ),
        ('[project]\nname="p"\n[tasks]\nsource="jira"\n', "tasks.source"),
        ('[project]\nname="p"\n[tmux]\nsession="a.b"\n', "tmux.session"),
        ('[project]\nname="p"\n[[domains]]\nname="operator"\npath="o"\n', "is reserved"),
        (
            '[project]\nname="p"\n[[domains]]\nname="a"\npath="a"\nscope="src"\n',
            "domains[0] (a).scope",
        ),
    ],
)
def test_each_bad_config_gives_a_one_line_error_naming_key(body, expected):
    problems = problems_of(body)
    assert any(expected in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_several_problems_are_all_reported():
    problems = problems_of('[project]\nname="p"\nx=1\n[agents]\ny=2\n')
    assert len(problems) == 2


def test_missing_and_binary_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.toml"))
    bad = tmp_path / "comm-node.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(bad))
    bad.write_bytes(b"#" * (2 * 1024 * 1024))
    with pytest.raises(ConfigError, match="over the limit"):
        load_config(str(bad))


def test_config_check_cli(make_ws, cli, tmp_path):
    root = make_ws()
    ok = cli("config", "check", cwd=root)
    assert ok.returncode == 0 and "ok (3 domains)" in ok.stdout
    (root / "docs").rmdir()
    text = (
        (root / "comm-node.toml")
        .read_text()
        .replace('name = "test-proj"', 'name = "test-proj"\ncolour = 1')
    )
    (root / "comm-node.toml").write_text(text)
    res = cli("config", "check", cwd=root)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines == ["comm-node.toml: project.colour: unknown key"]
    (root / "comm-node.toml").write_text(text.replace("\ncolour = 1", ""))
    res = cli("config", "check", "--json", cwd=root)
    assert res.returncode == 1
    assert "domains[2] (docs).path" in res.stdout and "does not exist" in res.stdout
    assert "Traceback" not in res.stderr


def test_invalid_config_is_one_line_for_every_command(make_ws, cli):
    root = make_ws()
    (root / "comm-node.toml").write_text('[project]\nname = "p"\n[[domains]]\nname="X"\npath="x"\n')
    res = cli("send", "--to", "docs", "hi", cwd=root / "backend")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "domains[0] (X).name" in res.stderr


def test_config_show_prints_the_validated_file_that_loads_again(tmp_path: Path) -> None:
    from tests.conftest import run_cli, write_workspace

    root = write_workspace(tmp_path / "ws")
    r = run_cli("config", "show", cwd=root)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    again = tmp_path / "again.toml"
    again.write_text(r.stdout)
    assert load_config(str(again)) == load_config(str(root / "comm-node.toml"))


def test_the_room_without_a_terminal_is_one_line_not_a_spinning_process(tmp_path: Path) -> None:
    from tests.conftest import run_cli, write_workspace

    root = write_workspace(tmp_path / "ws")
    r = run_cli(cwd=root, input="", timeout=20)  # no terminal: stdin and stdout are pipes
    assert r.returncode != 0
    assert "needs a terminal" in r.stderr and len(r.stderr.strip().splitlines()) == 1
