"""What a domain changed: the files (status, lines added and removed) and each file's patch.

Everything here is text an agent wrote (file names too): it is returned as plain str with
terminal control characters removed, and whoever shows it must not read it as markup. A
binary file, or a patch over MAX_PATCH_BYTES, comes back as a one-line note instead of the
bytes; git's output is read with a cap (integration/gitwork.py `run`), so a diff of
gigabytes costs a bounded read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from comm_node_tui.integration.gitwork import GitFailed, Work, run

MAX_PATCH_BYTES = 512 * 1024  # one file's patch; more is a note
MAX_FILES = 5000  # files listed; more is a note (and a count)
STATE_DIR = ".comm-node/"  # comm-node's own runtime files in a domain's folder: not work
HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the domain's folder
    status: str  # git's letter: A M D R C T, or ? for a file git does not track yet
    added: int | None  # None: binary (git counts no lines)
    removed: int | None
    old_path: str | None = None  # a rename's or copy's source
    # the names as git spelled them (surrogate-escaped bytes, control characters and all):
    # what is passed back to git; `path` and `old_path` are for showing
    raw: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def binary(self) -> bool:
        return self.added is None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "status": self.status,
            "added": self.added,
            "removed": self.removed,
            "old_path": self.old_path,
            "binary": self.binary,
        }


@dataclass(frozen=True)
class Patch:
    path: str
    text: str  # "" when `note` says why there is none
    note: str = ""  # one line: binary, too large, not in git

    def hunks(self) -> list[tuple[int, str]]:
        """(line index in `text`, the hunk's @@ header) for each hunk."""
        return [(i, ln) for i, ln in enumerate(self.text.splitlines()) if ln.startswith("@@")]


def clean(text: str) -> str:
    """Printable text: terminal escapes and other control characters an agent may have put in
    a file (or its name) would act on the operator's terminal."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c if c in "\n\t" or c.isprintable() else "\ufffd" for c in text)


def _fields(raw: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0")]


def _shown(raw: str) -> str:
    return clean(raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def changed_files(work: Work) -> tuple[list[FileChange], int]:
    """The files `work` changed since `work.since` (committed or not, and new files git
    does not track yet), sorted by path; and how many in all (more than MAX_FILES are cut)."""
    if work.top is None or work.since is None:
        return [], 0
    # --relative with the folder as cwd: paths relative to the domain's folder, and only
    # what lies inside it (a plain folder inside a larger repository)
    common = ("--relative", "-M", "-z", work.since, "--", ".")
    status = run(work.folder, "diff", "--name-status", *common)
    counts = run(work.folder, "diff", "--numstat", *common)
    for got in (status, counts):
        if got.code != 0:
            raise GitFailed(f"{work.domain}: git diff: {got.why()}")
    by_path: dict[str, FileChange] = {}
    parts = _fields(status.out)
    i = 0
    while i < len(parts) - 1:
        letter = parts[i][:1]
        if letter in "RC" and i + 2 < len(parts):
            old, new = parts[i + 1], parts[i + 2]
            by_path[new] = FileChange(_shown(new), letter, 0, 0, _shown(old), (old, new))
            i += 3
        else:
            name = parts[i + 1]
            by_path[name] = FileChange(_shown(name), letter, 0, 0, None, (name,))
            i += 2
    nums = _fields(counts.out)
    i = 0
    while i < len(nums) - 1:
        head = nums[i].split("\t")
        if len(head) < 3:
            i += 1
            continue
        if head[2] == "" and i + 2 < len(nums):  # a rename: the names follow
            path = nums[i + 2]
            i += 3
        else:
            path = head[2]
            i += 1
        seen = by_path.get(path)
        if seen is None:
            continue
        binary = head[0] == "-"
        by_path[path] = FileChange(
            seen.path,
            seen.status,
            None if binary else int(head[0]),
            None if binary else int(head[1]),
            seen.old_path,
            seen.raw,
        )
    untracked = run(work.folder, "ls-files", "--others", "--exclude-standard", "-z", "--", ".")
    if untracked.code == 0:
        for path in _fields(untracked.out):
            if path and not path.startswith(STATE_DIR) and path not in by_path:
                by_path[path] = FileChange(_shown(path), "?", None, None, None, (path,))
    files = sorted(by_path.values(), key=lambda f: f.path)
    return files[:MAX_FILES], len(files)


def patch(work: Work, change: FileChange) -> Patch:
    """One file's patch, or a note saying why there is none."""
    if work.top is None or work.since is None:
        return Patch(change.path, "", f"{work.domain}: {work.folder} is not in git")
    paths = change.raw or (change.path,)
    if change.status == "?":
        args: tuple[str, ...] = ("diff", "--no-index", "--", "/dev/null", *paths)
    else:
        args = ("diff", "--relative", "-M", work.since, "--", *paths)
    got = run(work.folder, *args, limit=MAX_PATCH_BYTES)
    if got.truncated:  # first: git was killed for it, so its exit code says nothing
        counted = (
            f" ({change.added} lines added, {change.removed} removed)"
            if change.added is not None
            else ""
        )
        return Patch(
            change.path, "", f"diff larger than {MAX_PATCH_BYTES // 1024} KB: not shown{counted}"
        )
    if got.code not in (0, 1):  # --no-index exits 1 when the files differ
        return Patch(change.path, "", f"no diff: {clean(got.why())}")
    text = clean(got.text)
    if change.binary and ("Binary files" in text[:2000] or not text.strip()):
        return Patch(change.path, "", "binary file: not shown")
    return Patch(change.path, text)


def hunk_at(patch_text: str, line: int) -> tuple[str, int | None]:
    """The hunk header governing `line` (an index into the patch's lines), and the new
    file's line number there (None on a header or a removed line)."""
    header, new_line = "", None
    lines = patch_text.splitlines()
    for text in lines[: line + 1]:
        m = HUNK.match(text)
        if m:
            header, new_line = text, int(m.group(2)) - 1
        elif new_line is not None and not text.startswith("-"):
            new_line += 1
    target = lines[line] if 0 <= line < len(lines) else ""
    if not header or target.startswith(("@@", "-")):
        return header, None
    return header, new_line
