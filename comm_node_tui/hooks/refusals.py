"""What Claude Code's Bash sandbox refused, read from a Bash call's output (issue 23).

Inside bubblewrap a write outside the allowed folders fails with EROFS ("Read-only file
system") and some operations with EPERM ("Operation not permitted"); the command's own error
names the path (`touch: cannot touch '/x': Read-only file system`, `bash: /x: Read-only file
system`, `mkdir: cannot create directory ‘/x’: ...`). The hook (PostToolUse, or
PostToolUseFailure when the command failed) turns each into a `boundary.sandbox_refused`
event naming the domain and the path. Stdlib only, imported by the hook for Bash alone.

A relative path is the command's own: after a `cd` it is relative to where the command went,
not to the agent's folder. Where the command starts with a plain chain of `cd DIR &&` (or
`;`) that is read and followed; any other directory change (`cd` later on, in a subshell,
`pushd`, a variable or `~` in DIR, `cd ... ||`) leaves the path as printed, relative to a
folder comm-node does not know (start_folder).
"""

from __future__ import annotations

import os
import re

from comm_node_tui.protocol.printable import printable

MARKERS = ("Read-only file system", "Operation not permitted")
MAX_TEXT = 64 * 1024  # of a command's output: the refusals are in its error lines
MAX_PATHS = 10
MAX_PATH_CHARS = 300
# the path a refusal line names: quoted (' ‘ ’ " `) or the field before ": <marker>"
_QUOTED = re.compile(r"['‘`\"]([^'’`\"\n]{1,4096})['’`\"]")
_FIELD = re.compile(r"(?:^|: |\s)(/[^\s:]{0,4096}|\.{1,2}/[^\s:]{0,4096}):\s*$")
# bash's own redirect error names the path as its last field, unquoted and often relative:
# `/bin/bash: line 1: web/x.ts: Read-only file system`; dash's says `sh: 1: cannot create
# web/x.ts: Read-only file system`. Only a field with a / or a . is taken for a path (in
# `ping: socket: Operation not permitted` the field is no file)
_LAST_FIELD = re.compile(r"(?:: |cannot create )([^\s:'‘’`\"]*[/.][^\s:'‘’`\"]*):\s*$")
CHANGES_DIR = frozenset({"cd", "pushd", "popd", "chdir"})


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


def start_folder(command: object, cwd: str | None) -> str | None:
    """The folder a relative path printed by `command` is relative to: `cwd` followed
    through the command's leading `cd DIR &&` / `cd DIR;` chain; None when the command
    changes directory in any other way (or cannot be read), so nobody is told a guess."""
    if not cwd:
        return None
    if not isinstance(command, str) or not any(w in command for w in CHANGES_DIR):
        return cwd
    import shlex

    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: not read
        return None
    folder, i = cwd, 0
    while i + 2 < len(words) and words[i] == "cd" and words[i + 2] in ("&&", ";"):
        target = words[i + 1]
        if not target or target.startswith(("-", "~")) or any(c in target for c in "$`*?["):
            return None
        folder = os.path.normpath(os.path.join(folder, target))
        i += 3
    if any(w in CHANGES_DIR for w in words[i:]):
        return None
    return folder


def refused_paths(
    text: str, cwd: str | None = None, command: object = None
) -> list[tuple[str, str]]:
    """[(path, the refusal's reason)] named by the refusal lines in `text`, absolute where
    the folder `command` ran in is known (start_folder; as printed where not), each once,
    printable characters only."""
    if not any(m in text for m in MARKERS):
        return []
    base = start_folder(command, cwd) if command is not None else cwd
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
            m = _FIELD.search(head) or _LAST_FIELD.search(head)
            if not m:
                continue
            path = m.group(1)
        if base and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(base, path))
        path = printable(path, MAX_PATH_CHARS)
        found.setdefault(path, marker)
        if len(found) >= MAX_PATHS:
            break
    return list(found.items())
