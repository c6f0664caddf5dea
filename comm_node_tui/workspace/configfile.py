"""comm-node.toml as a file: read within bounds, parsed as TOML (every syntax error), then
handed to the validation (workspace/config.py). Kept apart from the validation, which imports
pydantic (~0.15 s of CPU): a file that cannot be read or is no TOML at all is reported
without it, and only a file that parses pays for the models.
"""

from __future__ import annotations

import os
import re
import tomllib

from comm_node_tui.errors import ConfigError
from comm_node_tui.workspace.discovery import path_problems

TYPE_CHECKING = False  # annotations only: the models import pydantic
if TYPE_CHECKING:
    from comm_node_tui.workspace.config import WorkspaceConfig

MAX_CONFIG_BYTES = 1 << 20


def parse_config(text: str, file_label: str = "comm-node.toml") -> WorkspaceConfig:
    """Validate config text; ConfigError with one line per problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file_label, [f"{file_label}: invalid TOML: {exc}"]) from None
    from comm_node_tui.workspace.config import _validate

    config, problems = _validate(data, file_label)
    if config is None:
        raise ConfigError(file_label, problems)
    return config


_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)$")
MAX_SYNTAX_ERRORS = 20


def parse_toml_tolerant(text: str, file_label: str) -> tuple[dict | None, list[str]]:
    """The TOML data and every syntax error, not just the first: tomllib stops at one, so the
    line it names is left out and the text parsed again. The data then lacks those lines
    (None when what is left still does not parse: an unclosed string or array swallows the
    rest, and guessing further would only invent errors). When nothing is left at all, or
    MAX_SYNTAX_ERRORS lines break, the file is no TOML (JSON, YAML, noise): its first error
    says so, the others add nothing."""
    lines = text.split("\n")
    problems: list[str] = []
    blanked: set[int] = set()
    while len(problems) < MAX_SYNTAX_ERRORS:
        try:
            data = tomllib.loads("\n".join(lines))
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{file_label}: invalid TOML: {exc}")
            m = _TOML_LINE.search(str(exc))
            line = int(m.group(1)) - 1 if m else -1
            if not 0 <= line < len(lines) or line in blanked:
                return None, problems
            blanked.add(line)
            lines[line] = ""
            continue
        return (None, problems[:1]) if problems and not data else (data, problems)
    return None, problems[:1]  # that many broken lines: no TOML either


def _read_text(path: str) -> tuple[str, str]:
    """(the file's text, its label); ConfigError when it cannot be read as a config."""
    from comm_node_tui.protocol.fileio import FileTooLarge, NotARegularFile, read_bounded

    label = os.path.basename(path)
    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(path, [f"{path}: not found"]) from None
    except FileTooLarge as exc:
        raise ConfigError(
            path, [f"{label}: {exc.size} bytes is over the limit of {exc.limit} bytes"]
        ) from None
    except NotARegularFile as exc:
        what = str(exc).rsplit(": is ", 1)[-1]
        raise ConfigError(path, [f"{label}: is {what}"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        return raw.decode("utf-8"), label
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"{label}: not UTF-8 text (byte {exc.start})"]) from None


def load_config(path: str) -> WorkspaceConfig:
    text, label = _read_text(path)
    return parse_config(text, label)


def check_config(path: str, root: str) -> tuple[WorkspaceConfig | None, list[str]]:
    """Every problem of a config file at once, for `config check` and `doctor`: each TOML
    syntax error, then the field and cross-domain errors of what parsed, then the domain
    paths on disk; the model only when there is no problem but the paths."""
    try:
        text, label = _read_text(path)
    except ConfigError as exc:
        return None, exc.problems
    data, problems = parse_toml_tolerant(text, label)
    if data is None:
        return None, problems
    from comm_node_tui.workspace.config import _validate

    config, invalid = _validate(data, label)
    problems += invalid
    if config is not None:
        domains = [(i, d.name, d.path) for i, d in enumerate(config.domains)]
        if problems:  # a syntax error: the file does not load, whatever the rest says
            config = None
    else:
        raw = data.get("domains")
        domains = [
            (i, d["name"], d["path"])
            for i, d in enumerate(raw if isinstance(raw, list) else [])
            if isinstance(d, dict)
            and isinstance(d.get("name"), str)
            and isinstance(d.get("path"), str)
            and d["path"]
            and "\x00" not in d["path"]
        ]
    return config, problems + path_problems(domains, root, label)
