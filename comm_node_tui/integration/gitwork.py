"""Where a domain's work is, in git terms: its own branch, or its working tree.

A domain whose folder is a git worktree (or a repository) checked out on a branch other than
the base has a branch of its own: its work is that branch (and what is not committed yet)
against the merge base with the base branch, and the merge queue can take it. Any other
folder (the base branch's own checkout, a plain folder inside the workspace's repository) has
only its working tree against HEAD: reviewable, not mergeable. A folder outside git has
neither, and says so in one line.

git runs as a subprocess with a timeout and a cap on what is read (`run`): a diff is text an
agent wrote, and a huge one must cost this process its cap, not its memory. Arguments go to
git as a list, never through a shell; branch names come from git itself or the operator's
config.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from comm_node_tui.errors import CommNodeError
from comm_node_tui.workspace.model import Domain, Workspace

GIT_TIMEOUT_S = 60.0
OUT_LIMIT = 8 * 1024 * 1024  # what one git call may hand back; more is cut and flagged
ERR_LIMIT = 64 * 1024  # the end of what git says on stderr: its reason is the last line
# Merge commits are the queue's: they carry its name whatever the user's git identity is
# (and a machine without one can still merge).
IDENTITY = ("-c", "user.name=comm-node merge queue", "-c", "user.email=comm-node@localhost")


class GitFailed(CommNodeError):
    """git exited non-zero or could not run; the message is one line."""


@dataclass(frozen=True)
class GitOut:
    code: int
    out: bytes
    err: str
    truncated: bool  # stdout passed `limit`: the rest was never read

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    def why(self) -> str:
        """git's own last line of complaint, or the exit code."""
        lines = [ln.strip() for ln in self.err.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("hint:")] or lines
        return lines[-1] if lines else f"git exited {self.code}"


def run(
    cwd: str,
    *args: str,
    limit: int = OUT_LIMIT,
    timeout_s: float = GIT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> GitOut:
    """One git command (`env` added to this process's environment); never raises for git's
    own failure (see `code`), only when git cannot start or outlives `timeout_s` (GitFailed,
    one line)."""
    # GIT_OPTIONAL_LOCKS=0: reading a domain's worktree (status, diff) must not take its
    # index lock to refresh stat data while the agent is committing there
    full_env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_OPTIONAL_LOCKS": "0",
        **(env or {}),
    }
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
        )
    except OSError as exc:
        raise GitFailed(f"git {args[0]} in {cwd}: {exc.strerror or exc}") from None
    assert proc.stdout is not None and proc.stderr is not None
    # stderr drained alongside, its tail kept: `git add -A` warns a line per file (line
    # endings), and a full stderr pipe would stop git before it closes stdout
    err_tail = bytearray()
    stderr = proc.stderr

    def drain() -> None:
        while chunk := stderr.read(64 * 1024):
            err_tail.extend(chunk)
            del err_tail[: max(0, len(err_tail) - ERR_LIMIT)]

    drainer = threading.Thread(target=drain, name="git-stderr", daemon=True)
    drainer.start()
    try:
        # Read at most limit+1 bytes: one more than allowed says there was more.
        out = proc.stdout.read(limit + 1)
        truncated = len(out) > limit
        if truncated:
            proc.kill()
            out = out[:limit]
        code = proc.wait(timeout_s)
        drainer.join(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise GitFailed(f"git {args[0]} in {cwd}: no answer in {timeout_s:g} s") from None
    finally:
        drainer.join(5.0)  # git has ended (or was killed): its stderr is at EOF
        proc.stdout.close()
        proc.stderr.close()
    err = bytes(err_tail)
    return GitOut(code, out, err.decode("utf-8", "replace"), truncated)


def check(cwd: str, *args: str, limit: int = OUT_LIMIT) -> str:
    """git's output as text, or GitFailed naming the command and git's reason."""
    got = run(cwd, *args, limit=limit)
    if got.code != 0:
        raise GitFailed(f"git {args[0]}: {got.why()}")
    return got.text


def _has_git_above(path: str) -> bool:
    """Whether a `.git` is in `path` or a folder above: git's failure is then a fault, not
    a plain folder that was never a repository."""
    p = os.path.realpath(path)
    while True:
        if os.path.lexists(os.path.join(p, ".git")):
            return True
        up = os.path.dirname(p)
        if up == p:
            return False
        p = up


@dataclass(frozen=True, slots=True)
class Where:
    """Where a domain's folder is in git: its working tree, repository, index."""

    top: str
    repo: str  # the common git dir: folders with the same one share branches and objects
    index: str


def locate(path: str) -> Where | None:
    """The repository holding `path`; None for a folder in no repository; GitFailed for no
    such folder or a repository git cannot read. The one finder of a domain's place in git:
    review and the merge queue (find_work) and the conflict warnings (conflicts.py) both
    start here. (Each git call is a process: one answers all three.)"""
    if not os.path.isdir(path):
        raise GitFailed(f"{path}: no such folder")
    if not _has_git_above(path):
        return None
    got = run(path, "rev-parse", "--show-toplevel", "--git-common-dir", "--git-path", "index")
    lines = got.out.decode("utf-8", "surrogateescape").splitlines()  # a path as it is
    if got.code != 0:
        raise GitFailed(f"git rev-parse in {path}: {got.why()[:300]}")
    if len(lines) < 3:
        raise GitFailed(f"git rev-parse in {path}: no working tree")
    top = os.path.realpath(lines[0])
    return Where(top, os.path.realpath(os.path.join(path, lines[1])), os.path.join(path, lines[2]))


def repo_top(path: str) -> str | None:
    """The working tree `path` is in, or None outside git (or no folder, or a repository
    git cannot read)."""
    try:
        where = locate(path)
    except GitFailed:
        return None
    return where.top if where is not None else None


def current_branch(top: str) -> str | None:
    """The branch checked out in `top`; None when HEAD is detached."""
    got = run(top, "symbolic-ref", "--quiet", "--short", "HEAD")
    return got.text.strip() or None if got.code == 0 else None


def has_branch(top: str, branch: str) -> bool:
    return run(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").code == 0


def rev(top: str, ref: str) -> str | None:
    got = run(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return got.text.strip() or None if got.code == 0 else None


def main_worktree(top: str) -> str:
    """The repository's main working tree (the first `git worktree list` names): the one
    place the queue runs repository-wide commands from, whichever worktree it was given."""
    got = run(top, "worktree", "list", "--porcelain")
    for line in got.text.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree ") :]
            if os.path.isdir(path):
                return os.path.realpath(path)
            break
    return top


def base_branch(ws: Workspace, top: str) -> str:
    """`[integration] base_branch`, else the repository's default: origin's HEAD when it
    has one, else main, else master."""
    configured = ws.settings.integration.base_branch
    if configured:
        if not has_branch(top, configured):
            raise GitFailed(f"[integration] base_branch {configured!r}: no such branch in {top}")
        return configured
    got = run(top, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if got.code == 0 and got.text.strip():
        name = got.text.strip().split("/", 1)[-1]
        if has_branch(top, name):
            return name
    for name in ("main", "master"):
        if has_branch(top, name):
            return name
    raise GitFailed(
        f"{top}: no main or master branch; set [integration] base_branch in comm-node.toml"
    )


@dataclass(frozen=True)
class Work:
    """Where one domain's changes are."""

    domain: str
    folder: str  # the domain's folder
    top: str | None  # its working tree's top; None: not in git
    branch: str | None  # its own branch (mode "branch"), else None
    base: str | None  # the base branch (mode "branch")
    since: str | None  # the commit the changes are counted from (merge base, or HEAD)
    mode: str  # "branch" | "tree" | "none"

    def describe(self) -> str:
        if self.mode == "branch":
            return f"{self.domain}: branch {self.branch} against {self.base}"
        if self.mode == "tree":
            return f"{self.domain}: its working tree against HEAD (no branch of its own)"
        return f"{self.domain}: {self.folder} is not in git"


def find_work(ws: Workspace, dom: Domain) -> Work:
    """Where `dom`'s work is; GitFailed (one line) when git cannot say."""
    where = locate(dom.path) if os.path.isdir(dom.path) else None
    if where is None:
        return Work(dom.name, dom.path, None, None, None, None, "none")
    top = where.top
    branch = current_branch(top)
    base = base_branch(ws, top) if branch is not None else None
    if branch is not None and branch != base and os.path.realpath(dom.path) == top:
        got = run(top, "merge-base", base or "HEAD", "HEAD")
        since = got.text.strip() if got.code == 0 and got.text.strip() else None
        if since is None:  # unrelated histories: everything on the branch counts
            since = _empty_tree(top)
        return Work(dom.name, dom.path, top, branch, base, since, "branch")
    head = rev(top, "HEAD") or _empty_tree(top)  # a repository with no commit yet
    return Work(dom.name, dom.path, top, None, None, head, "tree")


def _empty_tree(top: str) -> str:
    return check(top, "hash-object", "-t", "tree", "/dev/null").strip()
