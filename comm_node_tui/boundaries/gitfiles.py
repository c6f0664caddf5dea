"""What git knows about a domain's files: the repository, its files, what changed, what is
staged (read from the index git is committing, so `GIT_INDEX_FILE` is honoured).

git runs as a subprocess, arguments as a list (never a shell). Not GitPython: its import
alone cost ~0.13 s of CPU, paid at every engine start and in the pre-commit guard before every
agent's commit, for four git commands and `cat-file` (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import subprocess

SKIP_DIRS = frozenset(
    {".git", ".comm-node", "node_modules", "target", "__pycache__", ".venv", "venv", "dist"}
)
GIT_TIMEOUT_S = 120.0


class GitError(Exception):
    pass


def _git_dir(dot_git: str) -> str | None:
    """The repository a `.git` names: the folder itself, or the target of a worktree's or
    submodule's `gitdir:` file (relative to the folder holding it)."""
    if os.path.isfile(dot_git):
        try:
            with open(dot_git, encoding="utf-8", errors="replace") as fh:
                line = fh.read(4096).strip()
        except OSError:
            return None
        if not line.startswith("gitdir:"):
            return None
        target = line[len("gitdir:") :].strip()
        return os.path.join(os.path.dirname(dot_git), target)
    return dot_git


def _is_repository(git_dir: str) -> bool:
    return all(os.path.exists(os.path.join(git_dir, p)) for p in ("HEAD", "objects", "refs")) or (
        # a linked worktree's own folder holds HEAD and names the shared one in `commondir`
        os.path.isfile(os.path.join(git_dir, "HEAD"))
        and os.path.isfile(os.path.join(git_dir, "commondir"))
    )


def repo_top(path: str) -> str | None:
    """The working tree holding `path`, or None when it is not in a git repository: the
    folder holding the nearest `.git`, as git finds it. A `.git` that names no repository
    (a worktree whose folder in the main repository was pruned) is no repository, and git
    looks no further up: neither does this. A bare repository has no working tree."""
    here = os.path.abspath(path)
    if not os.path.exists(here):
        return None
    while True:
        dot_git = os.path.join(here, ".git")
        if os.path.lexists(dot_git):
            git_dir = _git_dir(dot_git)
            return os.path.realpath(here) if git_dir and _is_repository(git_dir) else None
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _git(top: str, args: list[str], stdin: bytes | None = None) -> bytes:
    # GIT_OPTIONAL_LOCKS=0: a status must not take the index lock of a tree an agent is
    # committing in (to refresh stat data)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=top,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=GIT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        # not str(exc): it holds the whole command line, every path of a large commit
        raise GitError(
            f"git {' '.join(args[:2])} in {top}: no answer in {GIT_TIMEOUT_S:g} s"
        ) from None
    except OSError as exc:
        raise GitError(f"git {' '.join(args[:2])} in {top}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        # one line for the operator: git's own reason (its fatal:/error: line; usage hints
        # and advice may follow it), else its last line
        lines = [ln.strip() for ln in os.fsdecode(proc.stderr).splitlines() if ln.strip()]
        told = [ln for ln in lines if ln.startswith(("fatal:", "error:"))] or lines[-1:]
        why = told[0] if told else f"exit {proc.returncode}"
        raise GitError(f"git {' '.join(args[:2])} in {top}: {why}")
    return proc.stdout


def _run(top: str, *args: str) -> str:
    return os.fsdecode(_git(top, list(args)))


def _split(out: str, top: str) -> list[str]:
    return [os.path.join(top, p) for p in out.split("\0") if p]


def tracked_and_new(top: str) -> list[str]:
    """Every file git tracks or would add (untracked and not ignored) that exists."""
    out = _run(top, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return [p for p in dict.fromkeys(_split(out, top)) if os.path.isfile(p)]


def changed(top: str) -> list[str]:
    """Files changed in the working tree or the index, untracked ones and deletions too."""
    out = _run(top, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    parts = out.split("\0")
    files: list[str] = []
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if len(entry) < 4:
            continue
        files.append(os.path.join(top, entry[3:]))
        if "R" in entry[:2] or "C" in entry[:2]:
            if i < len(parts) and parts[i]:
                files.append(os.path.join(top, parts[i]))  # the old name went away
            i += 1
    return list(dict.fromkeys(files))


def staged(top: str) -> list[str]:
    """Files the next commit adds, changes or deletes."""
    out = _run(top, "diff", "--cached", "--name-only", "-z", "--no-renames")
    return _split(out, top)


def staged_contents(top: str, paths: list[str], limit: int) -> dict[str, bytes | None]:
    """The staged content of each path (None when larger than `limit` bytes); deleted
    paths are left out."""
    if not paths:
        return {}
    rels = [os.path.relpath(p, top) for p in paths]
    out = _run(top, "ls-files", "-s", "-z", "--", *rels)
    blobs: dict[str, str] = {}  # path -> blob id
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, _, rel = entry.partition("\t")
        mode, sha, stage = meta.split()
        if stage != "0" or not mode.startswith("100"):
            continue  # conflicts, submodules and symlinks are not source to parse
        blobs[os.path.join(top, rel)] = sha
    if not blobs:
        return {}
    shas = list(dict.fromkeys(blobs.values()))
    # sizes first, then only the blobs within the limit: a huge file is never read
    sizes: dict[str, int] = {}  # "<sha> <type> <size>", or "<sha> missing"
    asked = "\n".join(shas).encode() + b"\n"
    for line in _git(top, ["cat-file", "--batch-check"], asked).split(b"\n"):
        parts = line.split()
        if len(parts) == 3:
            sizes[parts[0].decode()] = int(parts[2])
    small = [sha for sha in shas if sha in sizes and sizes[sha] <= limit]
    contents: dict[str, bytes] = {}
    if small:
        raw = _git(top, ["cat-file", "--batch"], "\n".join(small).encode() + b"\n")
        pos = 0
        for sha in small:  # "<sha> <type> <size>\n<content>\n", in the order asked
            eol = raw.find(b"\n", pos)
            if eol < 0:
                break
            header = raw[pos:eol].split()
            if len(header) != 3:  # "<sha> missing": gone since the sizes were read
                pos = eol + 1
                continue
            size = int(header[2])
            contents[sha] = raw[eol + 1 : eol + 1 + size]
            pos = eol + 1 + size + 1
    # a blob git does not have (a broken index) is left out, like a deleted path
    return {path: contents.get(sha) for path, sha in blobs.items() if sha in sizes}


def walk(root: str) -> list[str]:
    """Files under a directory that is not a git repository."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        out.extend(os.path.join(dirpath, f) for f in filenames)
    return out
