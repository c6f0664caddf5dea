"""A private HOME for Claude Code that starts straight to its prompt, offline, against a
scripted model.

Claude Code keeps its global state in `$CLAUDE_CONFIG_DIR/.claude.json`. Without the keys
written here it shows first-run screens (facts for 2.1.330, docs/model.md): onboarding (which
tries api.anthropic.com and exits when offline), "Detected a custom API key ... Do you want to
use this API key?" and, per folder, the trust dialog. The environment returned keeps it off
the network: with the DISABLE_* switches it makes no DNS look-ups, no HEAD request and no
git or ssh call to github.com (tests/test_real_claude_offline.py), and talks only to
ANTHROPIC_BASE_URL.

The real user's ~/.claude is never touched: a HOME that is the user's own is refused.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from comm_node_tui.claude_code import TESTED_VERSION
from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.fileio import DIR_MODE, atomic_write

DUMMY_API_KEY = "sk-ant-comm-node-scripted-model-offline-key"
CONFIG_NAME = ".claude.json"
MAX_CONFIG_BYTES = 16 * 1024 * 1024

OFFLINE_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    # Else, a second or two after its prompt, it fetches its plugin marketplace from
    # github.com (git over https, then ssh): network calls, and processes, in every agent.
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    # The Bun runtime's own GC timer (a repeating timer that starts a collection whenever the
    # heap grew since its last tick): in 2.1.330 it collects the start-up heap about a second
    # after the prompt and again ~10 s later, 0.3 s of CPU of the ~1.1 s a claude spends in
    # its first 15 s (docs/benchmarks.md). JavaScriptCore's own allocation-driven collector
    # still runs, so memory stays bounded: 20-40 MB more resident per agent, a fair price for
    # scripted agents that live seconds to minutes.
    "BUN_GC_TIMER_DISABLE": "1",
}

# Inherited variables that would send claude to a real account or another config, or make it
# behave as if run inside another Claude Code; XDG_* would point back into the real home.
_DROP_PREFIXES = (
    "ANTHROPIC_",
    "CLAUDE_",
    "CLAUDECODE",
    "XDG_CONFIG_",
    "XDG_DATA_",
    "XDG_CACHE_",
    "XDG_STATE_",
    "AWS_BEARER_TOKEN_BEDROCK",
)


@dataclass(frozen=True)
class ClaudeHome:
    home: str
    config_dir: str
    env: dict[str, str]  # the variables to run claude with

    @property
    def config_file(self) -> str:
        return os.path.join(self.config_dir, CONFIG_NAME)

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A whole environment: `base` (default os.environ) without the variables that would
        reach a real account or the real home, plus `env`."""
        base = os.environ if base is None else base
        out = {k: v for k, v in base.items() if not k.startswith(_DROP_PREFIXES)}
        out.update(self.env)
        return out


def _user_homes() -> set[str]:
    homes = set()
    try:
        homes.add(os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir))
    except KeyError:
        pass
    if os.environ.get("HOME"):
        homes.add(os.path.realpath(os.environ["HOME"]))
    return homes


def _read_config(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CommNodeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CommNodeError(f"{path}: over {MAX_CONFIG_BYTES} bytes; not a Claude Code config")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CommNodeError(f"{path}: not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise CommNodeError(f"{path}: not a JSON object; fix or remove it")
    return data


def _dict(parent: dict, key: str) -> dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def prepare_claude_home(
    home: str | os.PathLike[str],
    base_url: str,
    *,
    trust: Iterable[str | os.PathLike[str]] = (),
    api_key: str = DUMMY_API_KEY,
    version: str = TESTED_VERSION,
) -> ClaudeHome:
    """Make `home` a HOME where Claude Code starts offline at its prompt, trusting exactly the
    folders in `trust`, and return the environment to run it with. An existing .claude.json
    is merged into, not replaced."""
    home = os.path.realpath(os.fspath(home))
    if home in _user_homes() or home == "/":
        raise CommNodeError(
            f"{home} is your own home; give Claude Code a private one (a new directory)"
        )
    config_dir = os.path.join(home, ".claude")
    os.makedirs(config_dir, mode=DIR_MODE, exist_ok=True)
    path = os.path.join(config_dir, CONFIG_NAME)
    data = _read_config(path)
    data["hasCompletedOnboarding"] = True
    data["lastOnboardingVersion"] = version
    responses = _dict(data, "customApiKeyResponses")
    approved = responses.get("approved")
    if not isinstance(approved, list):
        approved = responses["approved"] = []
    if api_key[-20:] not in approved:  # Claude Code records a key by its last 20 characters
        approved.append(api_key[-20:])
    if not isinstance(responses.get("rejected"), list):
        responses["rejected"] = []
    projects = _dict(data, "projects")
    for folder in trust:
        # Claude Code keys projects on its working directory, symlinks resolved (getcwd).
        for key in {os.path.abspath(os.fspath(folder)), os.path.realpath(os.fspath(folder))}:
            _dict(projects, key)["hasTrustDialogAccepted"] = True
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    env = {
        "HOME": home,
        "CLAUDE_CONFIG_DIR": config_dir,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        **OFFLINE_ENV,
    }
    return ClaudeHome(home=home, config_dir=config_dir, env=env)
