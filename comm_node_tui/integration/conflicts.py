"""Conflicts ahead of time: every pair of domains' current work merged in memory.

A domain's work is one commit (`domain_work`): its HEAD when its working tree is clean, else
a snapshot commit of the working tree on top of HEAD. The snapshot goes through a temporary
index (a copy of the worktree's own, so `git add -A` re-hashes only what changed, then
`write-tree` and `commit-tree`), never `git stash create`: stash refreshes and may rewrite
the real index, leaves untracked files out, and its commit has the index as a second parent,
which would put the staged half of an edit in the merge twice. The snapshot's dates are fixed,
so the same tree on the same HEAD is the same commit id from pass to pass and a pair whose two
commits did not change is not merged again (`ConflictChecker` keeps the last answers).

Pairs are merged with `git merge-tree --write-tree` (git >= 2.38): objects are written (the
snapshot, the merged tree: unreachable, pruned by git's gc), but no working tree, no index
and no ref is touched. Only domains in separate working trees of one repository can conflict:
domains sharing a working tree edit the same files in place, and separate repositories have
no common history to merge.

Where a domain's folder is in git comes from gitwork.locate, the finder review and the merge
queue use too, and git runs through gitwork.run: one answer to "which repository, which
working tree" and one way git's failures read, whichever part asks.

Files comm-node writes and manages (boundaries/managed.py) are never a conflict: every
domain's CLAUDE.md carries its own role section on purpose.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations

from comm_node_tui.boundaries.managed import is_managed_rel
from comm_node_tui.integration.gitwork import OUT_LIMIT, GitFailed, Where, locate, run

GIT_TIMEOUT_S = 60.0
SNAPSHOT_WORKERS = 4  # working trees snapshotted at once
MAX_HUNKS = 3  # per file, in a message or the World
MAX_HUNK_LINES = 12  # per side of a hunk
MAX_LINE_CHARS = 200
SNAPSHOT_MESSAGE = "comm-node: snapshot of uncommitted work (conflict check)"
# Fixed: the same tree on the same HEAD gives the same snapshot commit, pass after pass.
_SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "comm-node",
    "GIT_AUTHOR_EMAIL": "comm-node@localhost",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_NAME": "comm-node",
    "GIT_COMMITTER_EMAIL": "comm-node@localhost",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
}


def _git(
    cwd: str, *args: str, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[int, str]:
    got = run(cwd, *args, env=env, timeout_s=GIT_TIMEOUT_S)
    if got.truncated:
        raise GitFailed(f"git {args[0]} in {cwd}: more than {OUT_LIMIT >> 20} MiB of output")
    if got.code not in ok:
        raise GitFailed(f"git {args[0]} in {cwd}: {got.why()[:300]}")
    # paths as git wrote them: a name that is not UTF-8 goes back to git unchanged
    return got.code, got.out.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class WorkCommit:
    """One domain's current work, as a commit of its repository."""

    domain: str
    repo: str  # the repository's common git dir: which domains can be merged together
    top: str  # its working tree
    commit: str  # HEAD, or a snapshot commit of the uncommitted work on top of it
    branch: str | None  # None: a detached HEAD
    dirty: bool


def domain_work(domain: str, where: Where) -> WorkCommit:
    """The domain's branch/commit: HEAD, or a snapshot commit when its tree has changes."""
    top = where.top
    code, out = _git(top, "rev-parse", "HEAD", "HEAD^{tree}", "--abbrev-ref", "HEAD", ok=(0, 128))
    lines = out.split()
    if code != 0 or len(lines) < 3:
        _, ref = _git(top, "symbolic-ref", "--quiet", "HEAD", ok=(0, 1))
        what = f"branch {ref.strip().removeprefix('refs/heads/')}" if ref.strip() else "HEAD"
        raise GitFailed(f"{top}: {what} has no commit (a branch that vanished, or none yet)")
    head, head_tree, branch = lines[0], lines[1], None if lines[2] == "HEAD" else lines[2]
    tree = snapshot_tree(top, where.index)
    if tree == head_tree:
        return WorkCommit(domain, where.repo, top, head, branch, dirty=False)
    _, commit = _git(
        top, "commit-tree", tree, "-p", head, "-m", SNAPSHOT_MESSAGE, env=_SNAPSHOT_ENV
    )
    return WorkCommit(domain, where.repo, top, commit.strip(), branch, dirty=True)


def snapshot_tree(top: str, real_index: str) -> str:
    """The working tree (tracked, and untracked not ignored) as a tree object, through a
    temporary index: the worktree's index, its files and its refs are left as they were."""
    fd, tmp = tempfile.mkstemp(prefix="comm-node-index-")
    os.close(fd)
    try:
        env = {"GIT_INDEX_FILE": tmp}
        try:
            with open(real_index, "rb") as src, open(tmp, "wb") as dst:
                # its stat data: only the files that changed are hashed again
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        except FileNotFoundError:
            os.unlink(tmp)  # no index yet: start from HEAD's tree
            _git(top, "read-tree", "HEAD", env=env)
        _git(top, "add", "-A", env=env)
        if os.path.isdir(os.path.join(top, ".comm-node")):
            # comm-node's runtime folder is never work (init puts it in .gitignore; this is
            # for a workspace where it is not). Not an exclude pathspec on the add: git
            # refuses one that names an ignored path.
            _git(top, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", ".comm-node", env=env)
        _, tree = _git(top, "write-tree", env=env)
        return tree.strip()
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


@dataclass(frozen=True, slots=True)
class Hunk:
    """One conflicting region: where it starts in the first domain's version, both sides."""

    line: int
    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    more: int = 0  # lines left out of the two sides (bounded)

    def to_json(self) -> dict:
        return {
            "line": self.line,
            "ours": list(self.ours),
            "theirs": list(self.theirs),
            "more": self.more,
        }


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two domains' work that git cannot merge, in one file."""

    a: str  # the two domains, in name order
    b: str
    path: str  # relative to the working tree
    kind: str  # git's word: "content", "modify/delete", "add/add", ...
    hunks: tuple[Hunk, ...] = ()
    more_hunks: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.a, self.b, self.path)

    def to_json(self) -> dict:
        return {
            "domains": [self.a, self.b],
            "path": self.path,
            "kind": self.kind,
            "hunks": [h.to_json() for h in self.hunks],
            "more_hunks": self.more_hunks,
        }


@dataclass
class PassResult:
    conflicts: list[Conflict] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # domain -> one line
    work: dict[str, WorkCommit] = field(default_factory=dict)
    pairs: int = 0  # pairs considered
    merged: int = 0  # pairs merged this pass (the rest answered from the cache)
    seconds: float = 0.0

    def domains_checked(self) -> set[str]:
        return set(self.work)


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def hunks_of(text: str) -> tuple[list[Hunk], int]:
    """The conflict regions of a merged file with markers: (the first MAX_HUNKS, how many
    more). Lines are numbered as in the first side's version."""
    hunks: list[Hunk] = []
    total = 0
    line_no = 0  # lines of the first side's version seen so far
    side: str | None = None
    ours: list[str] = []
    theirs: list[str] = []
    start = 0
    for raw in text.splitlines():
        if side is None:
            if raw.startswith("<<<<<<< ") or raw == "<<<<<<<":
                side, ours, theirs, start = "ours", [], [], line_no + 1
            else:
                line_no += 1
            continue
        if raw.startswith("||||||| ") or raw == "|||||||":
            side = "base"  # diff3 style: the common version is not shown
        elif raw == "=======" and side in ("ours", "base"):
            side = "theirs"
        elif (raw.startswith(">>>>>>> ") or raw == ">>>>>>>") and side == "theirs":
            total += 1
            if len(hunks) < MAX_HUNKS:
                more = max(0, len(ours) - MAX_HUNK_LINES) + max(0, len(theirs) - MAX_HUNK_LINES)
                hunks.append(
                    Hunk(
                        start,
                        tuple(_clip(x) for x in ours[:MAX_HUNK_LINES]),
                        tuple(_clip(x) for x in theirs[:MAX_HUNK_LINES]),
                        more,
                    )
                )
            line_no += len(ours)
            side = None
        elif side == "ours":
            ours.append(raw)
        elif side == "theirs":
            theirs.append(raw)
    return hunks, total - len(hunks)


def _kind(message_type: str, message: str) -> str:
    # The message names it best ("CONFLICT (add/add): Merge conflict in x" has the type
    # "CONFLICT (contents)"); the type where the message does not start as expected.
    for text in (message, message_type):
        if text.startswith("CONFLICT ("):
            inner = text[len("CONFLICT (") :].partition(")")[0].strip()
            if inner:
                return "content" if inner in ("content", "contents") else inner
    return "content"


def parse_merge_tree(out: str) -> tuple[str, list[str], dict[str, str]]:
    """`git merge-tree --write-tree -z --name-only` output: (the merged tree, the conflicted
    paths, path -> the kind of conflict)."""
    parts = out.split("\0")
    tree = parts[0].strip() if parts else ""
    paths: list[str] = []
    i = 1
    while i < len(parts) and parts[i]:
        paths.append(parts[i])
        i += 1
    i += 1  # the empty entry ending the file list
    kinds: dict[str, str] = {}
    while i < len(parts) and parts[i]:
        try:
            count = int(parts[i])
        except ValueError:
            break
        named = parts[i + 1 : i + 1 + count]
        kind = parts[i + 1 + count] if i + 1 + count < len(parts) else ""
        message = parts[i + 2 + count] if i + 2 + count < len(parts) else ""
        i += count + 3  # the count, the paths, the type, the message
        if kind.startswith("CONFLICT"):
            for p in named:
                kinds.setdefault(p, _kind(kind, message))
    return tree, list(dict.fromkeys(paths)), kinds


def merge_pair(a: WorkCommit, b: WorkCommit) -> list[Conflict]:
    """What git cannot merge between two domains' work (both in one repository)."""
    first, second = (a, b) if a.domain <= b.domain else (b, a)
    if first.commit == second.commit:
        return []
    code, out = _git(
        first.top,
        "merge-tree",
        "--write-tree",
        "-z",
        "--name-only",
        "--messages",
        "--allow-unrelated-histories",
        first.commit,
        second.commit,
        ok=(0, 1),
    )
    if code == 0:
        return []
    tree, paths, kinds = parse_merge_tree(out)
    conflicts = []
    for path in paths:
        if is_managed_rel(path):
            continue
        kind = kinds.get(path, "content")
        hunks: list[Hunk] = []
        more = 0
        if kind == "content":
            shown = _merged_text(first.top, tree, path)
            if shown is not None:
                hunks, more = hunks_of(shown)
        conflicts.append(Conflict(first.domain, second.domain, path, kind, tuple(hunks), more))
    return conflicts


MAX_SHOWN_BYTES = 1 << 20  # a larger merged file: the conflict without its hunks


def _merged_text(top: str, tree: str, path: str) -> str | None:
    _, size = _git(top, "cat-file", "-s", f"{tree}:{path}", ok=(0, 128))
    if not size.strip().isdigit() or int(size) > MAX_SHOWN_BYTES:
        return None
    _, text = _git(top, "cat-file", "blob", f"{tree}:{path}", ok=(0, 128))
    return None if "\0" in text else text


class ConflictChecker:
    """One pass over every domain; the merges of pairs that did not change are remembered."""

    def __init__(self) -> None:
        self._merged: dict[tuple[str, str], list[Conflict] | str] = {}

    def run(self, domains: dict[str, str]) -> PassResult:
        """`domains`: name -> folder. Blocking (git): call it in a worker thread."""
        t0 = time.perf_counter()
        result = PassResult()
        where: dict[str, Where] = {}
        for name, path in sorted(domains.items()):
            try:
                found = locate(path)
            except GitFailed as exc:
                result.problems[name] = str(exc)
                continue
            if found is not None:
                where[name] = found
        # only domains sharing a repository with another working tree need a commit
        trees_of: dict[str, set[str]] = {}
        for w in where.values():
            trees_of.setdefault(w.repo, set()).add(w.top)
        wanted = [(name, w) for name, w in where.items() if len(trees_of[w.repo]) >= 2]

        def snap(item: tuple[str, Where]) -> WorkCommit | str:
            try:
                return domain_work(*item)
            except GitFailed as exc:
                return str(exc)

        # git does the work in its own processes: a few at once, the rest of the time is
        # waiting for them (the benchmark: docs/benchmarks.md)
        with ThreadPoolExecutor(max_workers=SNAPSHOT_WORKERS) as pool:
            for (name, _w), got in zip(wanted, pool.map(snap, wanted), strict=True):
                if isinstance(got, str):
                    result.problems[name] = got
                else:
                    result.work[name] = got
        merged: dict[tuple[str, str], list[Conflict] | str] = {}
        for a, b in combinations(sorted(result.work), 2):
            wa, wb = result.work[a], result.work[b]
            if wa.repo != wb.repo or wa.top == wb.top:
                continue
            result.pairs += 1
            key = (wa.commit, wb.commit)
            answer = self._merged.get(key)
            if answer is None:
                result.merged += 1
                try:
                    answer = merge_pair(wa, wb)
                except GitFailed as exc:
                    answer = str(exc)
            if isinstance(answer, str):  # not kept: git may answer next time
                result.problems.setdefault(a, f"merge with {b}: {answer}")
            else:
                merged[key] = answer
                result.conflicts.extend(answer)
        self._merged = merged  # what this pass saw: the cache never outgrows the pairs
        result.seconds = time.perf_counter() - t0
        return result
