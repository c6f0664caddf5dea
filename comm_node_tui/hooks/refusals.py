"""What Claude Code's Bash sandbox refused, read from a Bash call's output (issue 23).

Inside bubblewrap a write outside the allowed folders fails with EROFS ("Read-only file
system") and some operations with EPERM ("Operation not permitted"); the command's own error
names the path (`touch: cannot touch '/x': Read-only file system`, `bash: /x: Read-only file
system`, `mkdir: cannot create directory ‘/x’: ...`). The hook (PostToolUse, or
PostToolUseFailure when the command failed) turns each into a `boundary.sandbox_refused`
event naming the domain and the path. Stdlib only, imported by the hook for Bash alone.
"""

from __future__ import annotations

import os
import re

MARKERS = ("Read-only file system", "Operation not permitted")
MAX_TEXT = 64 * 1024  # of a command's output: the refusals are in its error lines
MAX_PATHS = 10
MAX_PATH_CHARS = 300
# the path a refusal line names: quoted (' ‘ ’ " `) or the field before ": <marker>"
_QUOTED = re.compile(r"['‘`\"]([^'’`\"\n]{1,4096})['’`\"]")
_FIELD = re.compile(r"(?:^|: |\s)(/[^\s:]{0,4096}|\.{1,2}/[^\s:]{0,4096}):\s*$")


def output_text(payload: dict) -> str:
    """The Bash call's output as one text: stdout and stderr (PostToolUse) or the error
    (PostToolUseFailure), bounded."""
    parts = []
    response = payload.get("tool_response")
    if isinstance(response, dict):
        parts += [v for k in ("stdout", "stderr") if isinstance(v := response.get(k), str)]
    elif isinstance(response, str):
        parts.append(response)
    error = payload.get("error")
    if isinstance(error, str):
        parts.append(error)
    return "\n".join(p[:MAX_TEXT] for p in parts)


def refused_paths(text: str, cwd: str | None = None) -> list[tuple[str, str]]:
    """[(path, the refusal's reason)] named by the refusal lines in `text`, absolute where
    `cwd` is known, each once, printable characters only."""
    if not any(m in text for m in MARKERS):
        return []
    found: dict[str, str] = {}
    for line in text.splitlines():
        marker = next((m for m in MARKERS if m in line), None)
        if marker is None:
            continue
        head = line[: line.index(marker)]
        quoted = _QUOTED.findall(head)
        if quoted:
            path = quoted[-1]
        else:
            m = _FIELD.search(head)
            if not m:
                continue
            path = m.group(1)
        if cwd and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(cwd, path))
        path = "".join(c if c.isprintable() else "?" for c in path)[:MAX_PATH_CHARS]
        found.setdefault(path, marker)
        if len(found) >= MAX_PATHS:
            break
    return list(found.items())
