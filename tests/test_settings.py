"""The typed settings (workspace/settings.py): one place for every default, the validation
agrees with it field by field, every key of comm-node.toml reaches it, read-only."""

from __future__ import annotations

import pytest

from comm_node_tui.workspace.config import (
    AgentsConfig,
    BoundariesConfig,
    BudgetsConfig,
    DomainConfig,
    PriceConfig,
    RouterConfig,
    TasksConfig,
    TmuxConfig,
    WorkspaceConfig,
    parse_config,
)
from comm_node_tui.workspace.discovery import load_workspace
from comm_node_tui.workspace.model import Domain, Workspace
from comm_node_tui.workspace.settings import DEFAULTS, PriceSettings, Settings
from tests.conftest import dedent

SECTIONS = {
    "agents": AgentsConfig,
    "tmux": TmuxConfig,
    "tasks": TasksConfig,
    "router": RouterConfig,
    "budgets": BudgetsConfig,
    "boundaries": BoundariesConfig,
}


def typed(value: object) -> tuple[type, object]:
    # 60 and 60.0 are equal but dump to TOML differently: a default must keep its type too.
    # A list setting is a tuple on the read-only side; JSON and TOML know only lists.
    if isinstance(value, tuple):
        value = list(value)
    return type(value), value


def test_settings_has_a_section_for_every_section_of_the_config_model():
    sections = set(WorkspaceConfig.model_fields) - {"project", "domains"}
    assert sections == set(DEFAULTS.to_dict())
    # [notify], [cluster] and [integration] hold lists: tests/test_notify.py,
    # tests/test_cluster_config.py and tests/test_merge_queue.py check their defaults
    assert set(SECTIONS) == sections - {"prices", "keymap", "notify", "cluster", "integration"}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_field_of_the_config_model_has_the_settings_default(section):
    model, defaults = SECTIONS[section], getattr(DEFAULTS, section).to_dict()
    assert set(model.model_fields) == set(defaults), "a field on one side only"
    for name, value in defaults.items():
        field = model.model_fields[name]
        assert not field.is_required(), f"{section}.{name}"
        assert typed(field.get_default()) == typed(value), f"{section}.{name}"


def test_prices_agree_on_what_is_required_and_the_defaults_of_the_rest():
    price = PriceSettings(input=3.0, output=15.0).to_dict()
    assert set(PriceConfig.model_fields) == set(price)
    for name in ("input", "output"):
        assert PriceConfig.model_fields[name].is_required()
        with pytest.raises(TypeError, match=f"{name} is required"):
            PriceSettings(**{k: v for k, v in price.items() if k != name})
    for name in ("cache_write", "cache_read"):
        assert typed(PriceConfig.model_fields[name].get_default()) == typed(price[name])


def test_a_validated_config_without_sections_gives_exactly_the_defaults():
    dumped = WorkspaceConfig.model_validate({"project": {"name": "p"}}).model_dump(mode="json")
    settings = Settings.from_config(dumped)
    assert settings == DEFAULTS
    for section in SECTIONS:
        values = getattr(settings, section).to_dict()
        assert {k: typed(v) for k, v in values.items()} == {
            k: typed(v) for k, v in dumped[section].items()
        }


def test_a_workspace_from_a_minimal_dict_takes_the_defaults(tmp_path):
    ws = Workspace(str(tmp_path), {"project": {"name": "p"}})
    assert ws.settings == DEFAULTS
    partial = Workspace(
        str(tmp_path),
        {
            "project": {"name": "p"},
            "agents": {"stuck_after_s": 5},
            "domains": [{"name": "a", "path": "a"}, {"name": "b", "path": "b", "command": "x"}],
        },
    )
    agents = partial.settings.agents
    assert agents.stuck_after_s == 5 and agents.heartbeat_lost_s == DEFAULTS.agents.heartbeat_lost_s
    assert partial.settings.tmux.session_for(partial.project) == "cn-p"
    a, b = partial.domains["a"], partial.domains["b"]
    assert (a.command, a.budget_tokens) == (DEFAULTS.agents.command, DEFAULTS.agents.budget_tokens)
    assert b.command == "x"


def test_a_domain_built_from_plain_data_has_the_config_models_defaults(tmp_path):
    dom = Domain({"name": "a", "path": "a"}, str(tmp_path), DEFAULTS.agents, shared=False)
    model = DomainConfig(name="a", path="a")
    keys = ("role", "scope", "exports", "imports", "allowed_imports", "forbidden_imports")
    for key in (*keys, "verify", "verify_timeout_s"):
        assert getattr(dom, key) == getattr(model, key), key


EVERY_KEY = dedent("""
    [project]
    name = "p"
    [agents]
    cli = "claude-code"
    command = "claude --verbose"
    model = "opus"
    budget_tokens = 1000
    heartbeat_stale_s = 5
    heartbeat_lost_s = 9
    stuck_after_s = 7
    work_budget_tokens = 50
    on_budget_exhausted = "pause"
    auto_lock_on_edit = true
    nudge_idle_agents = false
    context_window = 500000
    context_alert_pct = 60
    spiral_policy = "pause"
    spiral_repeats = 3
    spiral_minutes = 45
    sandbox = true
    sandbox_network = ["github.com"]
    sandbox_deny_read = ["~/.secret"]
    memory_max = "1G"
    cpu_quota = "80%"
    [tmux]
    socket = "sock"
    session = "sess"
    layout = "tiled"
    [tasks]
    source = "native"
    path = "plan/tasks.toml"
    max_attempts = 5
    verify_timeout_s = 30
    [router]
    max_message_bytes = 4096
    count_broadcast_per_recipient = false
    [boundaries]
    check_interval_s = 0
    [integration]
    conflict_check_s = 15.0
    coordinator = false
    report = "reports/integration.md"
    [budgets]
    auto_grant = false
    max_auto_grant_tokens = 10
    max_auto_total_ratio = 0.5
    min_efficiency = 3.5
    [prices."claude-x"]
    input = 1.0
    output = 2.0
    cache_read = 0.25
    [keymap]
    kill = "K"
""")


def test_every_key_of_comm_node_toml_reaches_the_settings_also_through_the_cache(tmp_path):
    (tmp_path / "comm-node.toml").write_text(EVERY_KEY)
    dumped = parse_config(EVERY_KEY).model_dump(mode="json")
    first = load_workspace(str(tmp_path))  # validates and writes the JSON cache
    cached = load_workspace(str(tmp_path))  # the agents' path: the cache, no pydantic
    assert (tmp_path / ".comm-node" / "guarded" / "config.cache.json").is_file()
    for ws in (first, cached):
        for section in SECTIONS:
            values = getattr(ws.settings, section).to_dict()
            # a list setting is a tuple on the read-only side
            as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
            assert as_json == dumped[section], section
            changed = {k for k, v in values.items() if v != getattr(DEFAULTS, section).to_dict()[k]}
            # every key set away from its default (cli has only one value so far)
            assert changed == set(values) - {"cli"}, section
        # [integration] holds a list (tests/test_merge_queue.py checks those keys)
        integration = ws.settings.integration
        assert (integration.conflict_check_s, integration.coordinator, integration.report) == (
            15.0,
            False,
            "reports/integration.md",
        )
        assert dict(ws.settings.prices) == {
            "claude-x": PriceSettings(input=1.0, output=2.0, cache_read=0.25)
        }
        assert dict(ws.settings.keymap) == {"kill": "K"}
        assert ws.settings.tasks.file() == "plan/tasks.toml"
        assert ws.settings.tmux.session_for(ws.project) == "sess"


def test_a_task_source_without_a_path_reads_its_usual_file(tmp_path):
    for source, file in (("beads", ".beads/issues.jsonl"), ("native", "tasks.toml"), ("none", "")):
        ws = Workspace(str(tmp_path), {"project": {"name": "p"}, "tasks": {"source": source}})
        assert ws.settings.tasks.file() == file


def test_settings_are_read_only_and_slotted():
    agents = DEFAULTS.agents
    with pytest.raises(AttributeError, match="read-only"):
        agents.stuck_after_s = 1
    with pytest.raises(AttributeError):
        agents.__dict__  # noqa: B018 (slots: no instance dict to write into)
    with pytest.raises(TypeError, match="no field colour"):
        type(agents)(colour="red")
    with pytest.raises(TypeError):
        DEFAULTS.keymap["kill"] = "K"
