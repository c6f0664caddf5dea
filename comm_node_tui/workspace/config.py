"""comm-node.toml: typed, strictly validated, read with tomllib and written with tomli-w.

Errors come back as one line per problem that names the file, the key path and what is
wrong, e.g. `comm-node.toml: domains[1] (web).name: 'Web' must match [a-z0-9][a-z0-9-]*`.
The file is read and parsed as TOML in configfile.py (its functions are re-exported here),
which imports this module, and pydantic with it, only for a file that parses.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from comm_node_tui.workspace.configfile import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from comm_node_tui.workspace.configfile import check_config as check_config
from comm_node_tui.workspace.configfile import load_config as load_config
from comm_node_tui.workspace.configfile import parse_config as parse_config
from comm_node_tui.workspace.configfile import parse_toml_tolerant as parse_toml_tolerant
from comm_node_tui.workspace.settings import DEFAULTS, session_name

# The validation of comm-node.toml. Each field's default comes from workspace/settings.py,
# the one place defaults live: the agents' hot path builds the typed settings without
# pydantic, so the settings cannot take their defaults from here; a field added here needs
# its twin there (tests/test_settings.py compares them field by field). Meanings and defaults
# are documented there; the limits a value must keep are here.
_AGENTS = DEFAULTS.agents

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
RESERVED_NAMES = {"operator", "all", "engine", "comm-node"}
# [agents] sandbox_network hosts (Claude Code's allowedDomains: "*.example.com", ":port");
# memory_max and cpu_quota as systemd spells them ("512M", "2G", "50%", "150%")
HOST_PATTERN = r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$"
MEMORY_PATTERN = r"^([1-9][0-9]{0,8}[KMGT]?)?$"
CPU_PATTERN = r"^([1-9][0-9]{0,4}%)?$"


def _limit_text(v: str, field: str) -> str:
    pattern, example = (
        (MEMORY_PATTERN, "bytes with K, M, G or T, e.g. '2G'")
        if field == "memory_max"
        else (CPU_PATTERN, "a percentage of one CPU, e.g. '50%' or '150%'")
    )
    if not re.match(pattern, v):
        raise ValueError(f"{v[:40]!r}: {example} ('' for none)")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProjectConfig(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class AgentsConfig(_Strict):
    """Defaults for every domain."""

    cli: Literal["claude-code"] = _AGENTS.cli
    command: str = _AGENTS.command
    model: str | None = _AGENTS.model
    budget_tokens: Annotated[int, Field(ge=0)] = _AGENTS.budget_tokens
    heartbeat_stale_s: Annotated[float, Field(gt=0)] = _AGENTS.heartbeat_stale_s
    heartbeat_lost_s: Annotated[float, Field(gt=0)] = _AGENTS.heartbeat_lost_s
    stuck_after_s: Annotated[float, Field(gt=0)] = _AGENTS.stuck_after_s
    work_budget_tokens: Annotated[int, Field(ge=0)] = _AGENTS.work_budget_tokens
    on_budget_exhausted: Literal["alert", "pause"] = _AGENTS.on_budget_exhausted
    auto_lock_on_edit: bool = _AGENTS.auto_lock_on_edit
    nudge_idle_agents: bool = _AGENTS.nudge_idle_agents
    context_window: Annotated[int, Field(ge=0)] = _AGENTS.context_window
    context_alert_pct: Annotated[int, Field(ge=1, le=100)] = _AGENTS.context_alert_pct
    spiral_policy: Literal["alert", "pause"] = _AGENTS.spiral_policy
    spiral_repeats: Annotated[int, Field(ge=2)] = _AGENTS.spiral_repeats
    spiral_minutes: Annotated[float, Field(ge=0)] = _AGENTS.spiral_minutes
    # issue 23: Claude Code's sandbox and limits per agent (workspace/settings.py)
    sandbox: bool = _AGENTS.sandbox
    sandbox_network: tuple[str, ...] = _AGENTS.sandbox_network
    sandbox_deny_read: tuple[Annotated[str, Field(min_length=1, max_length=4096)], ...] = (
        _AGENTS.sandbox_deny_read
    )
    memory_max: str = _AGENTS.memory_max
    cpu_quota: str = _AGENTS.cpu_quota

    @field_validator("sandbox_network")
    @classmethod
    def _hosts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for host in v:
            if not re.match(HOST_PATTERN, host):
                raise ValueError(f"{host[:60]!r}: a host name, '*.example.com' or 'host:port'")
        return v

    @field_validator("memory_max", "cpu_quota")
    @classmethod
    def _limit(cls, v: str, info: Any) -> str:
        return _limit_text(v, info.field_name)

    @field_validator("sandbox_deny_read")
    @classmethod
    def _deny_paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for path in v:
            if not (path.startswith("/") or path == "~" or path.startswith("~/")):
                raise ValueError(f"{path[:60]!r}: an absolute path or one under ~/")
            if any(not c.isprintable() for c in path):
                raise ValueError(f"{path[:60]!r}: contains a control character")
        return v

    @model_validator(mode="after")
    def _lost_after_stale(self) -> AgentsConfig:
        if self.heartbeat_lost_s <= self.heartbeat_stale_s:
            raise ValueError(
                f"heartbeat_lost_s ({self.heartbeat_lost_s:g}) must be greater than "
                f"heartbeat_stale_s ({self.heartbeat_stale_s:g})"
            )
        return self


class TmuxConfig(_Strict):
    socket: str = DEFAULTS.tmux.socket
    session: str = DEFAULTS.tmux.session
    layout: Literal["windows", "tiled"] = DEFAULTS.tmux.layout

    @field_validator("socket", "session")
    @classmethod
    def _no_tmux_specials(cls, v: str) -> str:
        # tmux rewrites '.' and ':' in names and treats them as target separators.
        bad = [c for c in v if c in ".:/ \t\n" or not c.isprintable()]
        if bad:
            raise ValueError(f"{v!r} contains {bad[0]!r}; use letters, digits, '-' and '_'")
        return v


class TasksConfig(_Strict):
    source: Literal["beads", "native", "none"] = DEFAULTS.tasks.source
    path: str = DEFAULTS.tasks.path
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = DEFAULTS.tasks.max_attempts
    verify_timeout_s: Annotated[float, Field(gt=0, le=86400)] = DEFAULTS.tasks.verify_timeout_s


class RouterConfig(_Strict):
    """Limits the router enforces on every message."""

    max_message_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = (
        DEFAULTS.router.max_message_bytes
    )
    count_broadcast_per_recipient: bool = DEFAULTS.router.count_broadcast_per_recipient


class BoundariesConfig(_Strict):
    """The engine's own boundary check (the same as `comm-node check`)."""

    check_interval_s: Annotated[float, Field(ge=0)] = DEFAULTS.boundaries.check_interval_s


class BudgetsConfig(_Strict):
    """The policy for `comm-node budget request`: auto-grant while a domain is efficient."""

    auto_grant: bool = DEFAULTS.budgets.auto_grant
    max_auto_grant_tokens: Annotated[int, Field(ge=0)] = DEFAULTS.budgets.max_auto_grant_tokens
    max_auto_total_ratio: Annotated[float, Field(ge=0)] = DEFAULTS.budgets.max_auto_total_ratio
    min_efficiency: Annotated[float, Field(ge=0)] = DEFAULTS.budgets.min_efficiency


class DomainConfig(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    path: Annotated[str, Field(min_length=1)]
    role: str = ""
    scope: list[str] = Field(default_factory=lambda: ["**"])
    exports: list[str] = Field(default_factory=list)
    imports: dict[str, list[str]] = Field(default_factory=dict)
    allowed_imports: list[str] = Field(default_factory=list)
    forbidden_imports: list[str] = Field(default_factory=list)
    command: str | None = None
    model: str | None = None
    budget_tokens: Annotated[int, Field(ge=0)] | None = None
    work_budget_tokens: Annotated[int, Field(ge=0)] | None = None
    # shell commands `task done` runs in the domain's folder before it closes a task
    # (docs/configuration.md); the operator's own text, never an agent's
    verify: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(default_factory=list)
    verify_timeout_s: Annotated[float, Field(gt=0, le=86400)] | None = None  # None: [tasks]'
    # issue 23, None: [agents]' (workspace/settings.py)
    sandbox: bool | None = None
    memory_max: str | None = None
    cpu_quota: str | None = None

    @field_validator("memory_max", "cpu_quota")
    @classmethod
    def _limit(cls, v: str | None, info: Any) -> str | None:
        return None if v is None else _limit_text(v, info.field_name)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_NAMES:
            raise ValueError(f"'{v}' is reserved; choose another name")
        return v

    @field_validator("scope", "exports")
    @classmethod
    def _globs(cls, v: list[str]) -> list[str]:
        from comm_node_tui.protocol.globs import validate_pattern

        for pattern in v:
            why = validate_pattern(pattern)
            if why:
                raise ValueError(f"{pattern!r}: {why}")
        return v

    @field_validator("path")
    @classmethod
    def _path_text(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("contains a NUL character")
        return v


class PriceConfig(_Strict):
    """USD per million tokens for models whose id starts with the table's key."""

    input: Annotated[float, Field(ge=0)]
    output: Annotated[float, Field(ge=0)]
    # None: derived from the input rate (workspace/settings.py PriceSettings)
    cache_write: Annotated[float, Field(ge=0)] | None = None
    cache_read: Annotated[float, Field(ge=0)] | None = None


# settings.py NOTIFY_KINDS, spelled out for the type checker (tests/test_notify.py: equal)
NotifyKind = Literal["permission", "dialog", "question", "lost", "budget", "failed"]


class NotifyConfig(_Strict):
    """[notify]: a webhook (ntfy or plain JSON), notify-send, which kinds, how often."""

    webhook: str = DEFAULTS.notify.webhook
    format: Literal["ntfy", "json"] = DEFAULTS.notify.format
    kinds: tuple[NotifyKind, ...] = ()  # DEFAULTS.notify.kinds: every kind
    min_interval_s: Annotated[float, Field(ge=0)] = DEFAULTS.notify.min_interval_s
    headers: dict[str, str] = Field(default_factory=dict)
    desktop: bool = DEFAULTS.notify.desktop
    timeout_s: Annotated[float, Field(gt=0, le=60)] = DEFAULTS.notify.timeout_s
    remote: bool = DEFAULTS.notify.remote

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("must be an http:// or https:// URL")  # never echo the secret
        if any(c.isspace() or not c.isprintable() for c in v):
            raise ValueError("must be one URL, with no spaces or control characters")
        return v

    @field_validator("headers")
    @classmethod
    def _header_text(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise ValueError(f"header {name[:40]!r}: not a valid HTTP header")
        return v


class ClusterConfig(_Strict):
    """[cluster]: the NATS JetStream the engines share (docs/cluster.md)."""

    nats: str = DEFAULTS.cluster.nats
    node: str = DEFAULTS.cluster.node
    local: list[str] = Field(default_factory=list)  # DEFAULTS.cluster.local: folders here
    token: str = DEFAULTS.cluster.token
    user: str = DEFAULTS.cluster.user
    password: str = DEFAULTS.cluster.password
    nkey_seed_file: str = DEFAULTS.cluster.nkey_seed_file
    tls_ca: str = DEFAULTS.cluster.tls_ca
    tls_cert: str = DEFAULTS.cluster.tls_cert
    tls_key: str = DEFAULTS.cluster.tls_key
    replicas: Annotated[int, Field(ge=1, le=5)] = DEFAULTS.cluster.replicas
    timeout_s: Annotated[float, Field(gt=0, le=60)] = DEFAULTS.cluster.timeout_s

    @field_validator("nats")
    @classmethod
    def _nats_urls(cls, v: str) -> str:
        for url in filter(None, (u.strip() for u in v.split(","))):
            if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError("each URL must start with nats://, tls://, ws:// or wss://")
        if any((c.isspace() and c != " ") or not c.isprintable() for c in v):
            raise ValueError("must be URLs with no control characters")  # never echo them
        return v

    @field_validator("node")
    @classmethod
    def _node_name(cls, v: str) -> str:
        if v and not all(c.isalnum() or c in "-_" for c in v):
            raise ValueError("letters, digits, '-' and '_' only (it names NATS subjects)")
        return v


def _branch_name(v: str) -> str:
    # passed to git as an argument, never through a shell; still refused when git would
    # read it as an option or a range, so a typo is one line here and not a git error later
    bad = (
        v.startswith("-")
        or ".." in v
        or any(c in v for c in " ~^:?*[\\")
        or any(not c.isprintable() for c in v)
    )
    if bad or v.endswith((".lock", "/", ".")):
        raise ValueError(f"{v[:80]!r} is not a usable git branch name")
    return v


class IntegrationConfig(_Strict):
    """[integration]: bringing the domains' work together (integration/)."""

    base_branch: Annotated[str, Field(max_length=200)] = DEFAULTS.integration.base_branch
    branch: Annotated[str, Field(min_length=1, max_length=200)] = DEFAULTS.integration.branch
    # shell commands run on every merged result: the operator's own text, as verify's
    tests: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(default_factory=list)
    tests_timeout_s: Annotated[float, Field(gt=0, le=86400)] = DEFAULTS.integration.tests_timeout_s
    land_on_base: bool = DEFAULTS.integration.land_on_base

    @field_validator("base_branch", "branch")
    @classmethod
    def _git_branch(cls, v: str) -> str:
        return _branch_name(v) if v else v

    # conflict warnings and the integration coordinator
    conflict_check_s: Annotated[float, Field(ge=0)] = DEFAULTS.integration.conflict_check_s
    coordinator: bool = DEFAULTS.integration.coordinator
    report: Annotated[str, Field(min_length=1, max_length=4096)] = DEFAULTS.integration.report

    @field_validator("report")
    @classmethod
    def _relative_file(cls, v: str) -> str:
        # the coordinator writes it inside its own folder: no way out of it
        parts = v.replace("\\", "/").split("/")
        if v.startswith("/") or ".." in parts or "\x00" in v or v.endswith("/"):
            raise ValueError("a file path relative to the coordinator's folder, without '..'")
        return v


class WorkspaceConfig(_Strict):
    project: ProjectConfig
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    tmux: TmuxConfig = Field(default_factory=TmuxConfig)
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    boundaries: BoundariesConfig = Field(default_factory=BoundariesConfig)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    keymap: dict[str, str] = Field(default_factory=dict)  # binding id -> keys, e.g. kill = "k"
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    integration: IntegrationConfig = Field(default_factory=IntegrationConfig)
    domains: list[DomainConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> WorkspaceConfig:
        problems = cross_problems([d.model_dump() for d in self.domains])
        if problems:
            raise ValueError(problems[0])  # parse_config reports every one of them
        return self

    def session_name(self) -> str:
        return session_name(self.tmux.session, self.project.name)


def cross_problems(domains: Any) -> list[str]:
    """Every problem between domains (names twice, imports of unknown domains, import rules),
    read from plain data that may hold invalid fields: so they are reported together with the
    field errors, not only once those are fixed."""
    doms = [d for d in domains if isinstance(d, dict)] if isinstance(domains, list) else []
    names = [d["name"] for d in doms if isinstance(d.get("name"), str)]
    seen = set(names)
    problems = [
        f"domain '{n}' is defined twice" for n in dict.fromkeys(names) if names.count(n) > 1
    ]
    for d in doms:
        name = d.get("name")
        if not isinstance(name, str):
            continue
        imports = d.get("imports")
        for peer in imports if isinstance(imports, dict) else ():
            if peer == name:
                problems.append(f"domain '{name}' imports from itself")
            elif peer not in seen:
                problems.append(
                    f"domain '{name}' imports from unknown domain '{peer}' "
                    f"(known: {', '.join(sorted(seen)) or 'none'})"
                )
        for key in ("allowed_imports", "forbidden_imports"):
            entries = d.get(key)
            for entry in entries if isinstance(entries, list) else ():
                why = _import_rule_problem(entry, seen) if isinstance(entry, str) else None
                if why:
                    problems.append(f"domain '{name}' {key}: {why}")
    return problems


def _import_rule_problem(entry: str, domains: set[str]) -> str | None:
    """An allowed/forbidden_imports entry is NAME, NAME:GLOB or a workspace GLOB
    (docs/boundaries.md); a bare word that is no domain is a typo, not a glob."""
    from comm_node_tui.protocol.globs import validate_pattern

    name, sep, glob = entry.partition(":")
    if sep:
        if name not in domains:
            return f"{entry!r}: unknown domain '{name}' (known: {', '.join(sorted(domains))})"
        return f"{entry!r}: {why}" if glob and (why := validate_pattern(glob)) else None
    if entry in domains:
        return None
    if not any(c in entry for c in "/*?["):
        return (
            f"{entry!r} is not a domain (known: {', '.join(sorted(domains))}); "
            f"write a path glob with a '/' or a wildcard, e.g. '{entry}/**'"
        )
    why = validate_pattern(entry)
    return f"{entry!r}: {why}" if why else None


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """('domains', 1, 'name') -> 'domains[1] (web).name'."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
            except (IndexError, KeyError, TypeError):
                node = None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def format_validation_error(file_label: str, exc: ValidationError, data: Any) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if p not in ("function-after",))
        where = _loc(loc, data)
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "string_pattern_mismatch":
            msg = f"{err.get('input')!r} must match [a-z0-9][a-z0-9-]*"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and kind not in ("value_error", "assertion_error"):
                shown = repr(err["input"])
                msg += f" (got {shown[:60]})"
        problems.append(f"{file_label}: {where}: {msg}" if where else f"{file_label}: {msg}")
    return problems


def _validate(data: Any, file_label: str) -> tuple[WorkspaceConfig | None, list[str]]:
    """The model, or every field error and every cross-domain problem at once (pydantic
    skips the model's own checks while a field is invalid: they are run on the data)."""
    try:
        return WorkspaceConfig.model_validate(data), []
    except ValidationError as exc:
        problems = format_validation_error(file_label, exc, data)
    domains = data.get("domains") if isinstance(data, dict) else None
    problems += [f"{file_label}: {p}" for p in cross_problems(domains)]
    return None, list(dict.fromkeys(problems))


def _key(key: str) -> str:
    """A TOML key as tomli-w spells it (bare, or quoted when it must be)."""
    import tomli_w

    return tomli_w.dumps({key: 0})[: -len(" = 0\n")]


def _table(path: str, table: dict, array: bool) -> str:
    """`[[path]]` (or `[path]`) and its keys, sub-tables as `[path.key]` below it."""
    import tomli_w

    flat = {k: v for k, v in table.items() if not isinstance(v, dict)}
    out = (f"[[{path}]]\n" if array else f"[{path}]\n") + tomli_w.dumps(flat)
    # tomli-w would give an empty table a header of its own, at the top level
    out += "".join(f"{_key(k)} = {{}}\n" for k, v in table.items() if v == {})
    for k, v in table.items():
        if isinstance(v, dict) and v:
            out += "\n" + _table(f"{path}.{_key(k)}", v, array=False)
    return out


def config_toml(data: dict) -> str:
    """comm-node.toml text for config data, domains always as `[[domains]]` tables: tomli-w
    writes a list of short tables inline (`domains = [{...}]`, at the top of the file), and
    a `[[domains]]` table appended to that by hand, as the docs show, is invalid TOML."""
    import tomli_w

    rest = {k: v for k, v in data.items() if k != "domains"}
    parts = [tomli_w.dumps(rest)] if rest else []
    parts += [_table("domains", d, array=True) for d in data.get("domains") or []]
    return "\n".join(parts)


def masked(data: dict) -> dict:
    """Config data as it may be shown: [notify]'s webhook URL and header values (a topic, a
    token) hidden (workspace/settings.py `mask_url`)."""
    from comm_node_tui.workspace.settings import mask_url

    cluster = data.get("cluster")
    if isinstance(cluster, dict):
        from comm_node_tui.workspace.settings import CLUSTER_SECRETS, mask_nats

        shown = {k: "***" if k in CLUSTER_SECRETS and v else v for k, v in cluster.items()}
        if isinstance(shown.get("nats"), str):
            shown["nats"] = mask_nats(shown["nats"])
        data = {**data, "cluster": shown}
    notify = data.get("notify")
    if not isinstance(notify, dict):
        return data
    hidden = dict(notify)
    if isinstance(hidden.get("webhook"), str):
        hidden["webhook"] = mask_url(hidden["webhook"])
    if isinstance(hidden.get("headers"), dict):
        hidden["headers"] = {k: "***" for k in hidden["headers"]}
    return {**data, "notify": hidden}


def dump_config(config: WorkspaceConfig) -> str:
    """TOML text for a config; loading it again gives an equal model."""
    return config_toml(config.model_dump(mode="json", exclude_none=True))


def save_config(path: str, config: WorkspaceConfig) -> None:
    from comm_node_tui.protocol.fileio import atomic_write

    atomic_write(path, dump_config(config), mode=0o644)


def check_paths(config: WorkspaceConfig, root: str, file_label: str) -> list[str]:
    """Problems with domain paths on disk (kept out of the model so it stays pure)."""
    return _path_problems(
        [(i, d.name, d.path) for i, d in enumerate(config.domains)], root, file_label
    )


def _path_problems(domains: list[tuple[int, str, str]], root: str, file_label: str) -> list[str]:
    from comm_node_tui.workspace.discovery import path_problems  # shared with the cached check

    return path_problems(domains, root, file_label)
