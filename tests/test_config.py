"""comm-node.toml: the documented keys, strict validation, one-line errors, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from comm_node_tui.errors import ConfigError
from comm_node_tui.workspace.config import (
    check_config,
    dump_config,
    load_config,
    parse_config,
    parse_toml_tolerant,
)
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
    # the field error and the path problem together, not the path only once the key is fixed
    assert lines[0] == "comm-node.toml: project.colour: unknown key"
    assert len(lines) == 2 and "domains[2] (docs).path" in lines[1], lines
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


EVERY_LAYER = dedent("""
    [project]
    name = "p"
    colour = 1
    [agents]
    heartbeat_stale_s = = 3
    [[domains]]
    name = "Web"
    path = "web"
    [[domains]]
    name = "api"
    path = "api"
    role = "never closed
    imports = { ghost = ["x"] }
    [[domains]]
    name = "api"
    path = "here"
""")


def test_config_check_reports_every_layer_at_once(tmp_path: Path, cli) -> None:
    """Syntax errors, field errors, cross-domain errors and paths in one run: before, a
    syntax error hid everything else, a field error hid the cross-checks, and either hid
    the paths (fix one, run again, meet the next)."""
    (tmp_path / "here").mkdir()
    (tmp_path / "comm-node.toml").write_text(EVERY_LAYER)
    res = cli("config", "check", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("comm-node.toml: invalid TOML: Invalid value (at line 5")
    assert lines[1].startswith("comm-node.toml: invalid TOML: Illegal character")
    assert "(at line 12" in lines[1]
    rest = lines[2:]
    assert "comm-node.toml: project.colour: unknown key" in rest
    assert any("domains[0] (Web).name: 'Web' must match" in x for x in rest)
    assert "comm-node.toml: domain 'api' is defined twice" in rest
    assert any("domain 'api' imports from unknown domain 'ghost'" in x for x in rest)
    assert any("domains[0] (Web).path:" in x and "does not exist" in x for x in rest)
    assert any("domains[1] (api).path:" in x and "does not exist" in x for x in rest)
    assert not any("domains[2] (api).path" in x for x in rest)  # that one exists
    assert len(lines) == 8, lines
    js = cli("config", "check", "--json", cwd=tmp_path)
    assert js.returncode == 1
    import json

    assert json.loads(js.stdout)["problems"] == lines


def test_every_cross_domain_problem_comes_with_the_field_errors() -> None:
    problems = problems_of(
        '[project]\nname="p"\n[[domains]]\nname="a"\npath="a"\nimports={ghost=["x"]}\n'
        '[[domains]]\nname="b"\npath="b"\nforbidden_imports=["nodomain"]\nbudget_tokens=-1\n'
    )
    assert any("domains[1] (b).budget_tokens" in p for p in problems)
    assert any("imports from unknown domain 'ghost'" in p for p in problems)
    assert any("'nodomain' is not a domain" in p for p in problems)


def test_a_string_left_open_stops_the_syntax_scan_without_inventing_errors() -> None:
    data, problems = parse_toml_tolerant('[project]\nname = """never closed\n', "c.toml")
    assert data is None and len(problems) == 1 and "invalid TOML" in problems[0]
    data, problems = parse_toml_tolerant('[project]\nname = "p"\n', "c.toml")
    assert data == {"project": {"name": "p"}} and problems == []


def test_check_config_of_a_good_file_gives_the_model(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "c.toml").write_text('[project]\nname="p"\n[[domains]]\nname="a"\npath="a"\n')
    config, problems = check_config(str(tmp_path / "c.toml"), str(tmp_path))
    assert problems == [] and config is not None and config.domains[0].name == "a"
    config, problems = check_config(str(tmp_path / "none.toml"), str(tmp_path))
    assert config is None and problems[0].endswith("none.toml: not found")


def test_dumped_domains_are_tables_another_can_be_appended_to(tmp_path: Path) -> None:
    """tomli-w writes short tables inline (`domains = [{...}]`, moved to the top); then the
    `[[domains]]` the docs tell people to append is invalid TOML."""
    cfg = parse_config('[project]\nname="p"\n[[domains]]\nname="a"\npath="a"\n')
    text = dump_config(cfg)
    assert "domains = [" not in text and text.count("[[domains]]") == 1
    again = parse_config(text + '\n[[domains]]\nname = "b"\npath = "b"\n')
    assert [d.name for d in again.domains] == ["a", "b"]
    none = parse_config(dump_config(parse_config('[project]\nname="p"\n')))
    assert none.domains == []


def test_a_file_that_is_no_toml_at_all_is_one_line_not_one_per_line() -> None:
    """Leaving broken lines out helps a config with a typo; a JSON or YAML file would give an
    error per line, and a `project` missing after that: its first error says it all."""
    yaml = "---\nfrom: x\nto: [frontend]\ntype: info\n---\nbody\n"
    for text in ("[1, 2, 3]", yaml, "x\n" * 50):
        data, problems = parse_toml_tolerant(text, "c.toml")
        assert data is None and len(problems) == 1 and "invalid TOML" in problems[0], problems
