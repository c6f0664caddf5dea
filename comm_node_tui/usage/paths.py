"""Where Claude Code keeps transcripts, and which paths comm-node may read as one.

Layout (Claude Code 2.1.330), under a config dir `<X>` (`$CLAUDE_CONFIG_DIR`, default
`~/.claude`; an agent may run with its own):

    <X>/projects/<folder>/<session>.jsonl                              a session
    <X>/projects/<folder>/<session>/subagents/[<sub>/]agent-<id>.jsonl  its sub-agents
    (+ agent-<id>.meta.json beside each, which is no transcript)

`<folder>` is the session's cwd with every UTF-16 code unit that is not [A-Za-z0-9] turned into
'-'; a name longer than 200 is cut to 200 and followed by '-' and a hash of the full cwd
(the binary's `KN`: `${n.slice(0,200)}-${Math.abs(rse(e)).toString(36)}`, `rse` being Java's
String.hashCode over UTF-16 code units, 32-bit signed). The real CLI wrote exactly that name for
a 272-character cwd (tests/test_usage.py keeps the observed name).
"""

from __future__ import annotations

import os
import re
import shlex

TYPE_CHECKING = False  # annotations only: typing costs import time
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_NAME = 200
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_FOLDER = re.compile(r"[A-Za-z0-9-]{1,300}")
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,200}")
MAX_SUB_DEPTH = 3  # subagents/<sub>/<sub>/<sub>/agent-x.jsonl at most


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def js_string_hash(text: str) -> int:
    """Java's String.hashCode as Claude Code computes it in JavaScript: `(h<<5)-h+c|0` over
    UTF-16 code units, a signed 32-bit result."""
    h = 0
    for unit in _utf16_units(text):
        h = (h * 31 + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _base36(n: int) -> str:
    digits = ""
    while True:
        n, r = divmod(n, 36)
        digits = _B36[r] + digits
        if n == 0:
            return digits


def sanitize(path: str) -> str:
    # JavaScript replaces per UTF-16 code unit: a character beyond U+FFFF becomes "--"
    return "".join(c if c in _ALNUM else ("--" if ord(c) > 0xFFFF else "-") for c in path)


def project_dir_name(path: str) -> str:
    """The folder under `<X>/projects/` where Claude Code keeps sessions run in `path`."""
    name = sanitize(path)
    if len(name) <= MAX_NAME:
        return name
    return f"{name[:MAX_NAME]}-{_base36(abs(js_string_hash(path)))}"


def folder_matcher(domain_path: str) -> Callable[[str], bool]:
    """A test for project folder names of sessions run in `domain_path` or below it. A long
    name keeps only its first 200 characters, so below that the folder cannot tell a domain
    from its sub-folders or a sibling sharing the prefix: records' cwd decides later."""
    name = sanitize(domain_path)
    if len(name) > MAX_NAME:
        head = name[:MAX_NAME] + "-"
        return lambda folder: folder.startswith(head)
    return lambda folder: folder == name or folder.startswith(name + "-")


def claude_home() -> str:
    return os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")


def split_transcript(path: str) -> tuple[str, str, str, bool] | None:
    """(projects root, folder, session id, is a sub-agent) when `path` has the shape of a
    Claude Code transcript, else None. Only the shape is checked, not the file."""
    parts = path.split(os.sep)
    if len(parts) < 4 or not parts[-1].endswith(".jsonl"):
        return None
    if parts[-3] == "projects":
        session = parts[-1][: -len(".jsonl")]
        return _checked(parts, len(parts) - 3, session, sub=False)
    try:  # .../projects/<folder>/<session>/subagents/[...]/agent-<id>.jsonl
        at = len(parts) - 1 - parts[::-1].index("subagents")
    except ValueError:
        return None
    depth = len(parts) - at - 2
    if at < 3 or depth > MAX_SUB_DEPTH or parts[at - 3] != "projects":
        return None
    if not all(_SEGMENT.fullmatch(p) for p in parts[at + 1 :]):
        return None
    return _checked(parts, at - 3, parts[at - 1], sub=True)


def _checked(
    parts: list[str], projects_at: int, session: str, *, sub: bool
) -> tuple[str, str, str, bool] | None:
    folder = parts[projects_at + 1]
    if not _FOLDER.fullmatch(folder) or not _SEGMENT.fullmatch(session):
        return None
    root = os.sep.join(parts[: projects_at + 1]) or os.sep
    return root, folder, session, sub


def config_dirs_in_command(command: object) -> list[str]:
    """`CLAUDE_CONFIG_DIR=...` assignments in a domain's agent command (`env X=... claude`):
    where its transcripts will be before any hook has said so."""
    if not isinstance(command, str) or "CLAUDE_CONFIG_DIR=" not in command:
        return []
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    found = []
    for w in words:
        if w.startswith("CLAUDE_CONFIG_DIR="):
            value = os.path.expanduser(w.split("=", 1)[1])
            if os.path.isabs(value):
                found.append(value)
    return found
