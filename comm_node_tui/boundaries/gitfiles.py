"""What git knows about a domain's files: the repository, its files, what changed, what is
staged (read from the index git is committing, so `GIT_INDEX_FILE` is honoured)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only
if TYPE_CHECKING:
    from types import ModuleType

SKIP_DIRS = frozenset(
    {".git", ".comm-node", "node_modules", "target", "__pycache__", ".venv", "venv", "dist"}
)


class GitError(Exception):
    pass


def _git() -> ModuleType:
    import git  # gitpython: imported here, only the check needs it

    return git


def repo_top(path: str) -> str | None:
    """The working tree holding `path`, or None when it is not in a git repository."""
    git = _git()
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    top = repo.working_tree_dir
    return os.path.realpath(top) if top else None


def _run(top: str, *args: str) -> str:
    git = _git()
    try:
        return git.Repo(top).git.execute(["git", *args], strip_newline_in_stdout=False)
    except git.GitCommandError as exc:
        raise GitError(f"git {' '.join(args[:2])} in {top}: {exc.stderr.strip()}") from None


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
    git = _git()
    repo = git.Repo(top)
    result: dict[str, bytes | None] = {}
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, _, rel = entry.partition("\t")
        mode, sha, stage = meta.split()
        if stage != "0" or not mode.startswith("100"):
            continue  # conflicts, submodules and symlinks are not source to parse
        stream = repo.odb.stream(bytes.fromhex(sha))
        result[os.path.join(top, rel)] = None if stream.size > limit else stream.read()
    return result


def walk(root: str) -> list[str]:
    """Files under a directory that is not a git repository."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        out.extend(os.path.join(dirpath, f) for f in filenames)
    return out
