"""comm-node.toml's sections as typed, read-only objects, and the one place their defaults live.

The runtime reads `ws.settings.agents.heartbeat_lost_s`, never a string key with a default
of its own. workspace/config.py (pydantic, the validation) takes every field's default from
`DEFAULTS` here rather than the other way round, because the agents' hot path (`comm-node
hook`, `comm-node send`) builds these objects from the JSON config cache and must not import
pydantic; tests/test_config.py checks the two field by field so they cannot drift.

Not even `dataclasses`: it imports `inspect`, about 12 ms more on every hook call, whose
imports all together take about 18 ms (`python -X importtime`, November 2026). `section`
below is the part of it these classes need (slots, frozen, keyword-only, defaults, ==,
repr); `dataclass_transform` has mypy check them as frozen, keyword-only dataclasses.
"""

from __future__ import annotations

from types import MappingProxyType

# Annotations only, and `typing` is not imported at run time: the hot path never loads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar, Literal, Self, TypeVar, dataclass_transform

    S = TypeVar("S", bound="_Section")
else:

    def dataclass_transform(**_: object):  # only mypy reads it
        return lambda f: f


_MISSING = object()


class _Section:
    """What `section` gives every settings class: a keyword-only constructor that fills in
    the defaults, read-only attributes, equality by value and a repr."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, object]] = {}

    def __init__(self, **values: Any) -> None:
        for name in self._fields:
            value = values.pop(name, self._defaults.get(name, _MISSING))
            if value is _MISSING:
                raise TypeError(f"{type(self).__name__}: {name} is required")
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}: no field {', '.join(sorted(values))}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Self:
        """From validated config data; keys it leaves out take their defaults."""
        data = data or {}
        return cls(**{name: data[name] for name in cls._fields if name in data})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self._fields))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"


@dataclass_transform(kw_only_default=True, frozen_default=True)
def section(cls: type[S]) -> type[S]:
    """`cls` (a `_Section` with annotated fields) remade with one slot per field, its
    class-level values kept as the defaults."""
    fields = tuple(cls.__annotations__)  # this class's own (a class's, since 3.10)
    defaults = {name: cls.__dict__[name] for name in fields if name in cls.__dict__}
    skip = {*defaults, "__dict__", "__weakref__"}
    body = {k: v for k, v in cls.__dict__.items() if k not in skip}
    body.update(__slots__=fields, _fields=fields, _defaults=defaults)
    remade: type[S] = type(cls.__name__, cls.__bases__, body)
    return remade


# Secrets a sandboxed command never reads, whatever the project: keys, cloud and registry
# credentials (docs/security.md).
SECRET_PATHS = (
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.config/gcloud",
    "~/.azure",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.npmrc",
    "~/.pypirc",
    "~/.git-credentials",
)


@section
class AgentsSettings(_Section):
    """[agents]: defaults for every domain."""

    # the agent CLI the domains run (adapters/agent_cli.py CLIS holds the same names)
    cli: Literal["claude-code"] = "claude-code"
    command: str = "claude"
    model: str | None = None
    budget_tokens: int = 200_000  # communication budget per domain; 0 = unlimited
    heartbeat_stale_s: float = 60
    # how long an agent must be gone (its process or pane) before its locks and claims go
    # back; silence alone never releases anything (docs/claude-code.md)
    heartbeat_lost_s: float = 120
    # busy, no hook and an unchanging screen for this long: an alert, nothing released
    stuck_after_s: float = 600
    work_budget_tokens: int = 0  # model tokens per domain; 0 = none
    on_budget_exhausted: Literal["alert", "pause"] = "alert"
    auto_lock_on_edit: bool = False  # the edit guard locks a file on its first edit
    nudge_idle_agents: bool = True  # type "you have N new messages" into idle agents' panes
    # the model's context window in tokens; 0 = the table in usage/windows.py (per model)
    context_window: int = 0
    # an alert when an agent's last request filled this share of its window (once a crossing)
    context_alert_pct: int = 40
    # a spiral (engine/spiral.py): the same tool call failing spiral_repeats times, or busy
    # for spiral_minutes with no write in its scope and no progress; an alert, and with
    # "pause" the domain is paused too (the operator resumes it). spiral_minutes 0 = off.
    spiral_policy: Literal["alert", "pause"] = "alert"
    spiral_repeats: int = 5
    spiral_minutes: float = 20
    # Issue 23, the walls the OS enforces (adapters/claude/sandbox.py, docs/security.md):
    # Claude Code's Bash sandbox built from each domain's scope (a domain may set its own
    # `sandbox`); off unless asked, so an existing workspace runs as before (the wizard asks,
    # yes by default where bubblewrap and socat are installed)
    sandbox: bool = False
    # hosts sandboxed commands may reach ("github.com", "*.npmjs.org"); none by default:
    # Claude Code's own requests to its model are made outside the sandbox
    sandbox_network: tuple[str, ...] = ()
    # paths sandboxed commands may not read ("~" is the agent's HOME)
    sandbox_deny_read: tuple[str, ...] = SECRET_PATHS
    # limits per agent process tree (panes/limits.py): systemd's MemoryMax (e.g. "2G") and
    # CPUQuota (e.g. "50%"); "" = none. Without a user systemd, a CPU quota lowers priority.
    memory_max: str = ""
    cpu_quota: str = ""


@section
class TmuxSettings(_Section):
    socket: str = ""  # "" = the user's default server; a name = a private socket (-L name)
    session: str = ""  # "" = "cn-<project name>"
    layout: Literal["windows", "tiled"] = "windows"

    def session_for(self, project: str) -> str:
        return session_name(self.session, project)


def session_name(session: str, project: str) -> str:
    """The agents' tmux session: [tmux] session, else "cn-<project name>"."""
    return session or f"cn-{project}"


# where each task source is read from when [tasks] path is ""
TASK_FILES = {"beads": ".beads/issues.jsonl", "native": "tasks.toml"}


@section
class TasksSettings(_Section):
    source: Literal["beads", "native", "none"] = "none"
    path: str = ""  # "" = the source's usual file (TASK_FILES)
    # failed verify attempts (`task done` refused by the gate) before the task is parked
    # and the operator alerted; `task reopen` starts the count again
    max_attempts: int = 3
    # each verify command's limit, unless its domain sets its own verify_timeout_s
    verify_timeout_s: float = 600

    def file(self) -> str:
        """The task file relative to the workspace ("" for source "none")."""
        return self.path or TASK_FILES.get(self.source, "")


@section
class RouterSettings(_Section):
    """Limits the router enforces on every message."""

    max_message_bytes: int = 64 * 1024
    count_broadcast_per_recipient: bool = True


@section
class BoundariesSettings(_Section):
    """The engine's own boundary check (the same as `comm-node check`)."""

    check_interval_s: float = 30.0  # 0 = only `comm-node check`


@section
class BudgetsSettings(_Section):
    """The policy for `comm-node budget request`: auto-grant while a domain is efficient."""

    auto_grant: bool = True
    max_auto_grant_tokens: int = 50_000  # per request
    max_auto_total_ratio: float = 1.0  # of the base budget, in all
    min_efficiency: float = 2.0  # delivered + answered per 1k tokens


@section
class PriceSettings(_Section):
    """USD per million tokens for models whose id starts with the table's key."""

    input: float
    output: float
    cache_write: float | None = None  # None: 1.25 x input (5 min), usage/prices.py
    cache_read: float | None = None  # None: 0.1 x input


# The kinds of "needs you" items (engine/needs.py NeedKind holds the same names; the
# workspace layer cannot import the engine's, tests/test_notify.py checks they agree).
NOTIFY_KINDS = ("permission", "dialog", "question", "lost", "budget", "failed")
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@section
class NotifySettings(_Section):
    """[notify]: who is told, outside the room, when something new waits on the operator.
    The webhook's URL and the headers are secrets (a topic, a token): `masked()` is the only
    way they are shown."""

    webhook: str = ""  # "" = none; any http(s) URL, e.g. https://ntfy.sh/<topic>
    format: Literal["ntfy", "json"] = "ntfy"  # ntfy: text body and Title/Tags headers
    kinds: tuple[str, ...] = ()  # which item kinds notify; () = every kind
    min_interval_s: float = 60.0  # at most one notification per kind in this time
    headers: Mapping[str, str] = _NO_HEADERS  # e.g. Authorization = "Bearer ..."
    desktop: bool = True  # `notify-send` where it is installed
    timeout_s: float = 5.0  # one webhook POST, at most
    # [cluster]: also the needs of agents other machines run (their own engines notify
    # for them: on with every engine, each such need would ring once per machine)
    remote: bool = False

    def wants(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None) -> NotifySettings:
        data = dict(data or {})
        if "kinds" in data:
            data["kinds"] = tuple(data["kinds"])
        if "headers" in data:
            data["headers"] = MappingProxyType(dict(data["headers"]))
        return cls.from_dict(data)

    def masked(self) -> dict[str, Any]:
        """The settings as they may be shown or logged: the secrets hidden."""
        return {
            **self.to_dict(),
            "webhook": mask_url(self.webhook),
            "kinds": list(self.kinds),
            "headers": {k: "***" for k in self.headers},
        }

    def __repr__(self) -> str:  # never the secrets, wherever a repr ends up
        return f"NotifySettings({self.masked()!r})"


def mask_url(url: str) -> str:
    """Scheme and host only: a URL's user, password, path (an ntfy topic is its secret) and
    query (a token) are hidden."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/***"


CLUSTER_ENV = {  # field -> the environment variable that overrides it (docs/cluster.md)
    "nats": "COMM_NODE_NATS_URL",
    "token": "COMM_NODE_NATS_TOKEN",
    "user": "COMM_NODE_NATS_USER",
    "password": "COMM_NODE_NATS_PASSWORD",
    "nkey_seed_file": "COMM_NODE_NATS_NKEY_SEED_FILE",
}
CLUSTER_SECRETS = ("token", "password")


@section
class ClusterSettings(_Section):
    """[cluster]: engines on several machines share one NATS JetStream (docs/cluster.md).
    `nats` "" = no cluster: nothing changes and nats is never imported. The token and the
    password are secrets: `masked()` is the only way they are shown."""

    nats: str = ""  # "nats://host:4222", several comma-separated for a cluster
    node: str = ""  # this engine's name in the cluster; "" = the host name
    # the domains whose agents run on this machine; () = every domain whose folder exists here
    local: tuple[str, ...] = ()
    token: str = ""
    user: str = ""
    password: str = ""
    nkey_seed_file: str = ""  # a file holding the nkey seed (never the seed itself)
    tls_ca: str = ""  # a CA file: the server's certificate is verified against it
    tls_cert: str = ""  # client certificate and key, for servers that require them
    tls_key: str = ""
    replicas: int = 1  # copies of each stream and bucket; 3 on a three-node cluster
    timeout_s: float = 5.0  # connecting, and each request to the server

    @property
    def enabled(self) -> bool:
        return bool(self.nats)

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
    ) -> ClusterSettings:
        """From validated config data, the COMM_NODE_NATS_* variables taking precedence (a
        secret need not be written into comm-node.toml)."""
        import os

        values = dict(data or {})
        environ = os.environ if env is None else env
        for name, var in CLUSTER_ENV.items():
            if environ.get(var):
                values[name] = environ[var]
        if "local" in values:
            values["local"] = tuple(values["local"])
        return cls.from_dict(values)

    def masked(self) -> dict[str, Any]:
        out = {**self.to_dict(), "nats": mask_nats(self.nats), "local": list(self.local)}
        for name in CLUSTER_SECRETS:
            if out[name]:
                out[name] = "***"
        return out

    def __repr__(self) -> str:  # never the secrets, wherever a repr ends up
        return f"ClusterSettings({self.masked()!r})"


def mask_nats(urls: str) -> str:
    """NATS URLs with any user:password@ hidden (the host and port are not secret)."""
    out = []
    for url in urls.split(","):
        scheme, sep, rest = url.strip().partition("://")
        _creds, at, host = rest.rpartition("@")
        out.append(f"{scheme}{sep}{'***@' if at else ''}{host}" if sep else url.strip())
    return ",".join(out)


@section
class IntegrationSettings(_Section):
    """[integration]: bringing the domains' work together: review, the merge queue, conflict
    warnings, the integration coordinator (integration/, docs/configuration.md)."""

    base_branch: str = ""  # "" = the repository's default branch (main, else master)
    branch: str = "comm-node/integration"  # where the merge queue lands what passes
    tests: tuple[str, ...] = ()  # shell commands run on every merged result
    tests_timeout_s: float = 600  # each of `tests`, at most
    land_on_base: bool = False  # also fast-forward base_branch to what landed
    # -- conflict warnings and the integration coordinator (engine/conflicts.py,
    #    integration/coordinator.py)
    conflict_check_s: float = 60.0  # every domain pair merged in memory this often; 0 = off
    coordinator: bool = True  # start the integration-role domain once all tasks are done
    report: str = ".comm-node/integration-report.md"  # in the coordinator's folder

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None) -> IntegrationSettings:
        data = dict(data or {})
        if "tests" in data:
            data["tests"] = tuple(data["tests"])
        return cls.from_dict(data)


_NO_PRICES: Mapping[str, PriceSettings] = MappingProxyType({})
_NO_KEYS: Mapping[str, str] = MappingProxyType({})


@section
class Settings(_Section):
    """Every section but [project] and [[domains]] (those are `Workspace.project` and
    `Workspace.domains`)."""

    agents: AgentsSettings = AgentsSettings()
    tmux: TmuxSettings = TmuxSettings()
    tasks: TasksSettings = TasksSettings()
    router: RouterSettings = RouterSettings()
    budgets: BudgetsSettings = BudgetsSettings()
    boundaries: BoundariesSettings = BoundariesSettings()
    prices: Mapping[str, PriceSettings] = _NO_PRICES  # model id prefix -> its price
    keymap: Mapping[str, str] = _NO_KEYS  # binding id -> keys, e.g. kill = "k"
    notify: NotifySettings = NotifySettings()
    cluster: ClusterSettings = ClusterSettings()
    integration: IntegrationSettings = IntegrationSettings()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """From a validated config as plain data; a missing section takes its defaults."""
        agents = dict(config.get("agents") or {})
        for key in ("sandbox_network", "sandbox_deny_read"):  # lists in JSON, tuples here
            if key in agents:
                agents[key] = tuple(agents[key])
        return cls(
            agents=AgentsSettings.from_dict(agents),
            tmux=TmuxSettings.from_dict(config.get("tmux")),
            tasks=TasksSettings.from_dict(config.get("tasks")),
            router=RouterSettings.from_dict(config.get("router")),
            budgets=BudgetsSettings.from_dict(config.get("budgets")),
            boundaries=BoundariesSettings.from_dict(config.get("boundaries")),
            prices=MappingProxyType(
                {k: PriceSettings.from_dict(v) for k, v in (config.get("prices") or {}).items()}
            ),
            keymap=MappingProxyType(dict(config.get("keymap") or {})),
            notify=NotifySettings.from_config(config.get("notify")),
            cluster=ClusterSettings.from_config(config.get("cluster")),
            integration=IntegrationSettings.from_config(config.get("integration")),
        )


DEFAULTS = Settings()
