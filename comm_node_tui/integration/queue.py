"""The merge queue: domains' branches merged one at a time into the integration branch, and
only what passes lands.

`enqueue` adds an entry to `.comm-node/merge-queue.json` (under the coordination lock,
written atomically: the CLI, the room and the engine may all touch it). `run_pass` takes the
queued entries in order, each in the queue's own scratch worktree
(`.comm-node/integration-wt/<repo>`, HEAD detached at the integration branch's tip):

1. `git merge --no-ff --no-commit` of the branch's tip;
2. the scope check on what the merge brings (boundaries/rules.py, the domain's scope), then
   the domain's `verify` commands and `[integration] tests`, on the merged tree
   (coordination/verify.py's runner: a timeout, a bounded output tail);
3. all passed: the merge commit is made and the integration branch fast-forwarded to it
   (`update-ref` with the old tip as the expected value, so a branch moved by someone else
   is never overwritten); `land_on_base` fast-forwards the base branch too.

Anything else (a conflict, a failing command, a branch that vanished, git refusing) marks the
entry with one line of reason, sends the owning domain a message with the files and the
output (its inbox, from "comm-node", as the engine's own notices), logs an event, and the
pass goes on with the next entry. The queue never deletes, resets or rewrites a branch, and
never touches a domain's own worktree: the only working tree it cleans is its own scratch
one. Entries are kept (the last KEEP_FINISHED finished ones) so `merge --status` can say what
happened; a pass that died mid-entry leaves it "running", and the next pass (which holds the
pass lock, so no other pass can be running) puts it back in the queue.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import time
from collections.abc import Callable

from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.errors import CommNodeError, ConflictError
from comm_node_tui.integration import gitwork
from comm_node_tui.integration.diff import clean
from comm_node_tui.integration.gitwork import IDENTITY, GitFailed, check, has_branch, rev, run
from comm_node_tui.protocol.events import Event
from comm_node_tui.protocol.fileio import atomic_write, ensure_dir, exclusive_flock
from comm_node_tui.protocol.messages import now_iso, render
from comm_node_tui.workspace.model import Domain, Workspace

QUEUE_FILE = "merge-queue.json"
PASS_LOCK = "merge-pass.lock"
SCRATCH_DIR = "integration-wt"
KEEP_FINISHED = 200
MAX_FILES_SHOWN = 50  # conflicted or out-of-scope files named in a message
OUTPUT_CHARS = 3000  # a failing command's output tail, in the message and the entry
QUEUED, RUNNING, LANDED, CONFLICT, FAILED = "queued", "running", "landed", "conflict", "failed"
FINISHED = (LANDED, CONFLICT, FAILED)


def scratch_path(ws: Workspace, top: str) -> str:
    """The queue's own worktree for the repository at `top`."""
    name = os.path.basename(top.rstrip(os.sep)) or "repo"
    digest = hashlib.sha256(top.encode()).hexdigest()[:8]
    return os.path.join(ws.paths.state, SCRATCH_DIR, f"{name}-{digest}")


class MergeQueue:
    def __init__(self, coord: Coordinator, on_message: Callable[[str], None] | None = None):
        self.coord = coord
        self.ws = coord.ws
        self.store = coord.store
        # told the domain's name when a message went to its inbox (the engine nudges it)
        self.on_message = on_message or (lambda _name: None)
        # each domain's repository (its main worktree, None: no worktree of its own), asked of
        # git once per pass: every entry's boundary check needs them all
        self._repos: dict[str, str | None] = {}

    # ---- the file ------------------------------------------------------------------------
    def _read(self) -> dict:
        data = self.store.read(QUEUE_FILE, {"next": 1, "entries": []})
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("entries"), list)
            or not all(isinstance(e, dict) and "id" in e for e in data["entries"])
        ):
            path = os.path.join(self.store.dir, QUEUE_FILE)
            raise CommNodeError(f"{path}: entries: not a list of queue entries; fix or move it")
        data.setdefault("next", len(data["entries"]) + 1)
        return data

    def _bad(self, exc: Exception) -> CommNodeError:
        """A queue file that cannot be read: an event, and one line to raise (the file is
        left as it is: nothing in it is lost, and nothing is queued until it is fixed)."""
        why = str(exc)
        self.coord.emit(Event("merge.queue_invalid", why, level="warn"))
        return CommNodeError(why)

    def entries(self) -> list[dict]:
        """Every entry, oldest first (a bad queue file: CommNodeError naming it)."""
        try:
            return self._read()["entries"]
        except (ValueError, CommNodeError) as exc:
            raise self._bad(exc) from None

    def _update(self, change: Callable[[dict], object]) -> object:
        """Read, change and write the queue file under the coordination lock."""
        with self.store.locked():
            try:
                data = self._read()
            except (ValueError, CommNodeError) as exc:  # never overwritten: nothing lost
                raise self._bad(exc) from None
            out = change(data)
            finished = [e for e in data["entries"] if e.get("state") in FINISHED]
            drop = {e["id"] for e in finished[: max(0, len(finished) - KEEP_FINISHED)]}
            data["entries"] = [e for e in data["entries"] if e["id"] not in drop]
            self.store.write(QUEUE_FILE, data)
            return out

    # ---- adding ---------------------------------------------------------------------------
    def enqueue(self, domain: str, by: str = "operator") -> dict:
        """Queue `domain`'s branch; the entry (an entry already waiting for the same branch
        is returned as it is, with "already": True)."""
        dom = self.ws.domain(domain)
        work = gitwork.find_work(self.ws, dom)
        if work.mode == "none":
            raise CommNodeError(f"{domain}: {dom.path} is not in git: nothing to merge")
        if work.mode != "branch" or work.top is None or work.branch is None:
            raise CommNodeError(
                f"{domain}: {dom.path} has no branch of its own (it is on the base branch, or "
                "a folder inside another checkout): nothing for the merge queue to take"
            )
        top, branch = gitwork.main_worktree(work.top), work.branch

        def add(data: dict) -> dict:
            for e in data["entries"]:
                same = (e.get("state"), e.get("domain"), e.get("branch"))
                if same == (QUEUED, domain, branch):
                    return {**e, "already": True}
            entry = {
                "id": f"q{data['next']}",
                "domain": domain,
                "branch": branch,
                "repo": top,
                "state": QUEUED,
                "queued_at": now_iso(),
                "by": by,
            }
            data["next"] += 1
            data["entries"].append(entry)
            return entry

        entry = self._update(add)
        assert isinstance(entry, dict)
        # only commits are merged: say so when the folder holds more (not kept in the file)
        dirty = run(work.top, "status", "--porcelain", "--untracked-files=no").out.strip()
        entry = {**entry, "uncommitted": bool(dirty)}
        if not entry.get("already"):
            self.coord.emit(
                Event(
                    "merge.queued",
                    f"{domain}: {branch} queued as {entry['id']} (by {by})",
                    agent=domain,
                    data={"id": entry["id"], "branch": branch},
                )
            )
        return entry

    # ---- a pass ---------------------------------------------------------------------------
    def run_pass(self, limit: int | None = None) -> list[dict] | None:
        """Take queued entries in order until none is left (or `limit` are done); the
        finished entries. None when another pass holds the pass lock (it will take them)."""
        ensure_dir(self.store.dir)
        lock = exclusive_flock(
            os.path.join(self.store.dir, PASS_LOCK), 0.0, lambda: ConflictError("busy")
        )
        try:
            lock.__enter__()
        except ConflictError:
            return None
        try:
            self._repos = {}
            self._requeue_stale()
            done: list[dict] = []
            while limit is None or len(done) < limit:
                entry = self._take()
                if entry is None:
                    break
                result = self._process(entry)
                done.append(self._finish(entry["id"], result))
            return done
        finally:
            lock.__exit__()

    def _requeue_stale(self) -> None:
        def requeue(data: dict) -> None:
            for e in data["entries"]:
                if e.get("state") == RUNNING:  # its pass died: we hold the only pass lock
                    e["state"] = QUEUED
                    e["retried"] = e.get("retried", 0) + 1

        self._update(requeue)

    def _take(self) -> dict | None:
        def take(data: dict) -> dict | None:
            for e in data["entries"]:
                if e.get("state") == QUEUED:
                    e["state"] = RUNNING
                    e["started_at"] = now_iso()
                    return dict(e)
            return None

        out = self._update(take)
        return out if isinstance(out, dict) else None

    def _finish(self, ident: str, result: dict) -> dict:
        def finish(data: dict) -> dict:
            for e in data["entries"]:
                if e["id"] == ident:
                    e.update(result, finished_at=now_iso())
                    return dict(e)
            return {"id": ident, **result}

        out = self._update(finish)
        assert isinstance(out, dict)
        return out

    # ---- one entry ------------------------------------------------------------------------
    def _process(self, entry: dict) -> dict:
        """Merge, check, land or refuse one entry; its result fields. Never raises."""
        name, branch = str(entry.get("domain")), str(entry.get("branch"))
        t0 = time.monotonic()
        try:
            result = self._merge(entry)
        except Exception as exc:  # git missing, a folder gone, a bug: the entry fails
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            result = {"state": FAILED, "reason": clean(why)[:300]}
        result["seconds"] = round(time.monotonic() - t0, 3)
        state = result["state"]
        ident = entry["id"]
        if state == LANDED:
            self.coord.emit(
                Event(
                    "merge.landed",
                    f"{name}: {branch} landed in {result.get('into')} ({ident})",
                    agent=name,
                    data={"id": ident, "commit": result.get("commit"), "branch": branch},
                )
            )
        else:
            self.coord.emit(
                Event(
                    f"merge.{state}",
                    f"{name}: {branch} not merged ({ident}): {result['reason']}",
                    agent=name,
                    level="warn",
                    data={"id": ident, "branch": branch, "files": result.get("files", [])[:20]},
                )
            )
            self._tell(name, entry, result)
        return result

    def _merge(self, entry: dict) -> dict:
        ws = self.ws
        name, branch, top = entry["domain"], entry["branch"], entry.get("repo") or ""
        dom = ws.domains.get(name)
        if dom is None:
            return {"state": FAILED, "reason": f"no domain {name} in comm-node.toml any more"}
        if not os.path.isdir(top):
            return {"state": FAILED, "reason": f"repository {top} is gone"}
        if not has_branch(top, branch):
            return {
                "state": FAILED,
                "reason": f"branch {branch} no longer exists (deleted or renamed): nothing merged",
            }
        tip = rev(top, f"refs/heads/{branch}")
        integ = ws.settings.integration.branch
        base = gitwork.base_branch(ws, top)
        if not has_branch(top, integ):
            check(top, "branch", integ, base)  # made once from the base; never moved back
        old = rev(top, f"refs/heads/{integ}")
        if tip is None or old is None:
            return {"state": FAILED, "reason": f"cannot read {branch} or {integ}"}
        if run(top, "merge-base", "--is-ancestor", tip, old).code == 0:
            return {"state": LANDED, "into": integ, "commit": old, "note": "already merged"}
        wt = self._scratch(top, integ)
        try:
            merged = run(wt, *IDENTITY, "merge", "--no-ff", "--no-commit", tip)
            if merged.code != 0:
                got = run(wt, "diff", "--name-only", "--diff-filter=U", "-z")
                files = [clean(f) for f in got.text.split("\0") if f]
                if files:
                    return {
                        "state": CONFLICT,
                        "reason": f"conflicts with {integ} in {len(files)} file(s)",
                        "files": files[:MAX_FILES_SHOWN],
                    }
                return {"state": FAILED, "reason": f"git merge: {clean(merged.why())}"}
            refused = self._boundaries(dom, top, wt)
            if refused is not None:
                return refused
            failed = self._commands(dom, wt)
            if failed is not None:
                return failed
            message = f"Merge {branch} ({name}) into {integ}\n\nby the comm-node merge queue"
            committed = run(wt, *IDENTITY, "commit", "--no-verify", "-q", "-m", message)
            if committed.code != 0:
                return {"state": FAILED, "reason": f"git commit: {clean(committed.why())}"}
            new = rev(wt, "HEAD")
            if new is None:
                return {"state": FAILED, "reason": "the merge commit cannot be read back"}
            moved = run(
                top, "update-ref", "-m", f"comm-node merge queue: {name}",
                f"refs/heads/{integ}", new, old,
            )  # fmt: skip
            if moved.code != 0:  # someone moved it meanwhile: nothing overwritten
                return {"state": FAILED, "reason": f"{integ} moved during the merge; queue again"}
            result = {"state": LANDED, "into": integ, "commit": new}
            if ws.settings.integration.land_on_base:
                result["base"] = self._land_on_base(top, base, new)
            return result
        finally:
            self._reset_scratch(wt)

    def _scratch(self, top: str, integ: str) -> str:
        """The queue's worktree for `top`, clean and detached at `integ`'s tip: a dirty one
        is cleaned (it is the queue's own), a broken one removed and made again."""
        path = scratch_path(self.ws, top)
        if os.path.isdir(path) and self._is_our_worktree(path, top):
            dirty = run(path, "status", "--porcelain", "-z").out != b""
            if dirty:
                self._reset_scratch(path)
                self.coord.emit(
                    Event(
                        "merge.scratch_cleaned",
                        f"the merge queue's worktree {path} had changes: cleaned",
                        level="warn",
                    )
                )
            check(path, "checkout", "-q", "--detach", f"refs/heads/{integ}")
            return path
        if os.path.lexists(path):
            # not a worktree of this repository (a half-made one, something else): the
            # folder is the queue's own, under .comm-node/, so it is made again
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            self.coord.emit(
                Event(
                    "merge.scratch_cleaned",
                    f"the merge queue's worktree {path} was broken: made again",
                    level="warn",
                )
            )
        run(top, "worktree", "prune")
        ensure_dir(os.path.dirname(path))
        check(top, "worktree", "add", "-q", "--detach", path, f"refs/heads/{integ}")
        return path

    @staticmethod
    def _is_our_worktree(path: str, top: str) -> bool:
        mine = run(path, "rev-parse", "--show-toplevel", "--git-common-dir")
        theirs = run(top, "rev-parse", "--git-common-dir")
        if mine.code != 0 or theirs.code != 0:
            return False
        lines = mine.text.splitlines()
        if len(lines) < 2 or os.path.realpath(lines[0]) != os.path.realpath(path):
            return False
        common = os.path.realpath(os.path.join(path, lines[1]))
        return common == os.path.realpath(os.path.join(top, theirs.text.strip()))

    @staticmethod
    def _reset_scratch(wt: str) -> None:
        """Back to a clean detached HEAD: the scratch worktree's own state only (HEAD is
        detached, so no branch moves)."""
        run(wt, "merge", "--abort")
        run(wt, "reset", "-q", "--hard")
        run(wt, "clean", "-q", "-ffdx")

    def _merged_view(self, dom: Domain, top: str, wt: str) -> Workspace:
        """The workspace as the merged tree sees it: `dom` and every other domain that is a
        worktree of the same repository have the scratch worktree as their folder (their
        scopes then divide the one merged tree between them, as they divide the repository)."""
        config = copy.deepcopy(self.ws.config)
        for d in config.get("domains", []):
            other = self.ws.domains.get(str(d.get("name")))
            if other is None:
                continue
            if other.name != dom.name and self._repo_of(other) != top:
                continue
            d["path"] = wt
            d.pop("scope_regex", None)  # the cache's, compiled for the domain's own folder
        return Workspace(self.ws.root, config)

    def _repo_of(self, dom: Domain) -> str | None:
        if dom.name not in self._repos:
            mine = gitwork.repo_top(dom.path)
            own = mine is not None and mine == dom.path
            self._repos[dom.name] = gitwork.main_worktree(mine) if own and mine else None
        return self._repos[dom.name]

    def _boundaries(self, dom: Domain, top: str, wt: str) -> dict | None:
        """The boundary check on what the merge brings: files outside `dom`'s scope, and
        imports in the merged files that break its rules (boundaries/check.py on the
        scratch worktree's index); the failed result, or None."""
        from comm_node_tui.boundaries.check import run_check
        from comm_node_tui.boundaries.gitfiles import GitError

        view = self._merged_view(dom, top, wt)
        outside = self._outside_scope(view, dom.name, wt)
        if outside:
            return {
                "state": FAILED,
                "reason": f"{len(outside)} changed file(s) outside {dom.name}'s scope",
                "files": outside[:MAX_FILES_SHOWN],
            }
        try:
            report = run_check(view, domain=dom.name, staged=True)
        except GitError as exc:
            return {"state": FAILED, "reason": f"boundary check: {clean(str(exc))[:200]}"}
        broken = [v for v in report.violations if v.kind == "import"]
        if broken:
            # named as in the repository, not by where the scratch worktree sits
            prefix = os.path.relpath(wt, view.root) + os.sep
            lines = [clean(v.describe().replace(prefix, "")) for v in broken[:MAX_FILES_SHOWN]]
            return {
                "state": FAILED,
                "reason": f"{len(broken)} import(s) that break {dom.name}'s rules",
                "files": sorted({clean(v.file.replace(prefix, "", 1)) for v in broken})[
                    :MAX_FILES_SHOWN
                ],
                "output": "\n".join(lines)[-OUTPUT_CHARS:],
            }
        return None

    def _outside_scope(self, view: Workspace, name: str, wt: str) -> list[str]:
        """Files the merge brings that the domain's scope does not cover."""
        from comm_node_tui.boundaries.rules import Rules

        mine = view.domains[name]
        if mine.scope == ["**"]:
            return []
        got = run(wt, "diff", "--cached", "--name-only", "-z", "--no-renames")
        rules = Rules(view)
        out = []
        for rel in got.text.split("\0"):
            mine_or_ours = not rel or rel.startswith(".comm-node/")
            if not mine_or_ours and not rules.in_scope(mine, os.path.join(wt, rel)):
                out.append(clean(rel))
        return out

    def _commands(self, dom: Domain, wt: str) -> dict | None:
        """The domain's verify commands, then [integration] tests, on the merged tree; the
        failed result, or None when all passed."""
        from comm_node_tui.coordination.verify import run_gate

        settings = self.ws.settings
        steps = [
            ("verify", dom.verify, dom.verify_timeout_s or settings.tasks.verify_timeout_s),
            ("integration tests", list(settings.integration.tests),
             settings.integration.tests_timeout_s),
        ]  # fmt: skip
        for what, commands, timeout_s in steps:
            for result in run_gate(list(commands), wt, timeout_s):
                if not result.ok:
                    return {
                        "state": FAILED,
                        "reason": f"{what}: {result.describe()}",
                        "output": result.tail[-OUTPUT_CHARS:],
                    }
        return None

    def _land_on_base(self, top: str, base: str, new: str) -> str:
        """Fast-forward the base branch to `new` when it can without touching work: only when
        `new` descends from it, and, where it is checked out, that checkout is clean."""
        old = rev(top, f"refs/heads/{base}")
        if old is None or run(top, "merge-base", "--is-ancestor", old, new).code != 0:
            return f"{base} has moved on: not fast-forwarded"
        where = _checked_out_at(top, base)
        if where is None:
            got = run(top, "update-ref", f"refs/heads/{base}", new, old)
            return f"{base} fast-forwarded" if got.code == 0 else f"{base}: {got.why()}"
        if run(where, "status", "--porcelain", "--untracked-files=no").out.strip():
            return f"{base} is checked out with changes at {where}: not fast-forwarded"
        got = run(where, "merge", "--ff-only", "-q", new)
        return f"{base} fast-forwarded" if got.code == 0 else f"{base}: {clean(got.why())}"

    # ---- telling the domain ---------------------------------------------------------------
    def _tell(self, name: str, entry: dict, result: dict) -> None:
        dom = self.ws.domains.get(name)
        if dom is None or not os.path.isdir(dom.path):
            return  # never re-create a domain's folder; the event holds the reason
        integ = self.ws.settings.integration.branch
        lines = [
            f"The merge queue did not land your branch {entry['branch']} "
            f"in {integ} ({entry['id']}): {result['reason']}."
        ]
        if result.get("files"):
            lines += ["", "Files:"] + [f"  {f}" for f in result["files"]]
        if result.get("output"):
            lines += ["", "Output (the end):", "", "```", result["output"].rstrip(), "```"]
        if result["state"] == CONFLICT:
            lines += [
                "",
                f"Merge {integ} into your branch (or rebase on it), resolve, commit, and "
                "queue again with `comm-node merge " + name + "`.",
            ]
        else:
            lines += ["", f"Fix it on your branch and queue again with `comm-node merge {name}`."]
        ident = f"merge-{entry['id']}-{entry.get('retried', 0)}-{result['state']}"
        meta = {
            "id": ident,
            "from": "comm-node",
            "to": [name],
            "type": "merge_failed",
            "priority": "high",
            "created": now_iso(),
            "subject": f"merge {entry['id']}: {result['state']}",
        }
        target = os.path.join(dom.paths.inbox, f"{ident}.md")
        if os.path.exists(target) or os.path.exists(
            os.path.join(dom.paths.inbox_read, f"{ident}.md")
        ):
            return
        ensure_dir(dom.paths.inbox)
        atomic_write(target, render(meta, "\n".join(lines) + "\n"))
        self.on_message(name)


def _checked_out_at(top: str, branch: str) -> str | None:
    """The worktree that has `branch` checked out, if any."""
    got = run(top, "worktree", "list", "--porcelain")
    path = None
    for line in got.text.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree ") :]
        elif line == f"branch refs/heads/{branch}":
            return path
    return None


def queue_status(entries: list[dict]) -> list[str]:
    """One line per entry, for `merge --status` (agent text passed through `clean`)."""
    out = []
    for e in entries:
        why = f": {e['reason']}" if e.get("reason") else ""
        note = f" ({e['note']})" if e.get("note") else ""
        out.append(
            clean(
                f"{e['id']:>5}  {e.get('state', '?'):<8} {e.get('domain')}  {e.get('branch')}"
                f"  queued {e.get('queued_at', '?')}{note}{why}"
            )
        )
    return out


__all__ = ["GitFailed", "MergeQueue", "queue_status", "scratch_path"]
