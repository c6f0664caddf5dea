"""Real token use from Claude Code transcripts, read incrementally.

Where transcripts are is in `comm_node_tui.usage.paths`: sessions and their sub-agents under
`<config dir>/projects/`, for the control room's own `$CLAUDE_CONFIG_DIR` (or ~/.claude), for
each config dir named in a domain's command (`CLAUDE_CONFIG_DIR=...`), and for each config dir
learned from a transcript path a domain's hook reported. Sub-agents count for the domain of
their parent session.

One API response is written as several lines sharing `message.id` + `requestId`, the early ones
with placeholder `output_tokens`: each response is counted once, with the largest usage seen for
it. Only new bytes are read on each poll; a half-written last line waits for its end; garbage
lines, unknown record types and `<synthetic>` (error) messages are skipped; a deleted, truncated
or replaced file is read again from its start (responses already counted are not doubled).

Some requests leave no assistant record: `/compact` (an internal sub-agent whose transcript is
never written) and side requests. Claude Code's own running totals do count them: at times
(after a compaction, at exit) it appends a `cost-state` record holding the session's cumulative
tokens per model. What such a record counts beyond the responses of the session that are in the
transcripts by then is added as `unlogged` (a forked session is skipped: its totals include the
session it was forked from). Compactions after a session's last `cost-state` are not known yet:
`unlogged_est` sums their `compactMetadata.preTokens` (the context they read) as an estimate
that is not part of `total`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections import deque
from datetime import datetime

from comm_node_tui.usage.paths import (
    claude_home,
    config_dirs_in_command,
    folder_matcher,
    project_dir_name,
    split_transcript,
)
from comm_node_tui.usage.prices import PriceTable, canonical
from comm_node_tui.usage.windows import context_pct, context_window
from comm_node_tui.workspace.model import Workspace

TYPE_CHECKING = False  # annotations only
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["WINDOW_S", "Response", "UsageTracker", "claude_home", "project_dir_name"]

WINDOW_S = 30 * 60
MAX_LINE = 16 * 1024 * 1024
MAX_ROOTS = 16  # config dirs scanned; hook payloads must not grow the scan without bound
MAX_ENTRIES = 20_000  # entries read from one directory
FRESH_DIR_S = 2.0  # a directory changed this recently is listed again: mtime ticks are coarse
_TS = re.compile(rb'"timestamp": ?"(\d{4}-\d\d-\d\dT[0-9:.+Z-]{1,40})"')
_DATE_SUFFIX = re.compile(r"-\d{8}$")
# the token kinds of a cost-state, in this order
_KINDS = ("input", "output", "cw5", "cw1h", "cache_read")


class Response:
    __slots__ = (
        "cache_read",
        "cost",
        "cw1h",
        "cw5",
        "domain",
        "input",
        "model",
        "output",
        "session",
        "ts",
    )

    def __init__(
        self, domain: str, model: str, usage: dict, ts: float, session: str | None = None
    ) -> None:
        self.domain = domain
        self.model = model
        self.ts = ts
        self.session = session
        self.cost: float | None = None
        self.input = _int(usage.get("input_tokens"))
        self.output = _int(usage.get("output_tokens"))
        self.cache_read = _int(usage.get("cache_read_input_tokens"))
        # as Claude Code splits it: the 1-hour part (at most the total) and the rest at the
        # 5-minute rate; a copied record may carry a 5-minute split larger than its zero total
        total_cw = _int(usage.get("cache_creation_input_tokens"))
        split = usage.get("cache_creation")
        one_hour = _int(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
        self.cw1h = min(one_hour, total_cw)
        self.cw5 = total_cw - self.cw1h

    @property
    def cache_write(self) -> int:
        return self.cw5 + self.cw1h

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read

    def vector(self) -> tuple[int, ...]:
        return (self.input, self.output, self.cw5, self.cw1h, self.cache_read)


def _empty_totals() -> dict:
    return {
        "input": 0,
        "output": 0,
        "cache_write": 0,
        "cache_read": 0,
        "total": 0,
        "cost_usd": 0.0,
        "tokens_per_min": 0.0,
        "responses": 0,
        "models": {},
        "unlogged": 0,
        "unlogged_cost_usd": 0.0,
        "unlogged_est": 0,
        "compactions": 0,
    }


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def _ts(text: object) -> float:
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def _model_key(model: str) -> str:
    # cost-state keys and transcript models may differ by a date suffix or provider prefix
    return _DATE_SUFFIX.sub("", canonical(model))


class _File:
    __slots__ = (
        "context",
        "domain",
        "ino",
        "last_ts",
        "main",
        "offset",
        "owner",
        "parent",
        "path",
        "session",
        "size",
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.ino: int | None = None
        self.size = 0
        self.domain: str | None = None
        # the domain whose hook reported this transcript: it wins over the cwd, which
        # cannot tell apart domains that share a directory
        self.owner: str | None = None
        self.last_ts = b""  # the latest record timestamp read (a session's main file)
        # the newest response's (timestamp, context tokens, model): what its next request
        # starts from (a session's main file; sub-agents have contexts of their own)
        self.context: tuple[float, int, str] | None = None
        shape = split_transcript(path)
        if shape is None:
            self.session, self.parent, self.main = path, None, True
        else:
            root, folder, session, sub = shape
            self.session = session
            self.main = not sub
            self.parent = os.path.join(root, folder, session + ".jsonl") if sub else None


class _Session:
    __slots__ = ("compactions", "forked", "main", "reported", "reported_at")

    def __init__(self, main: str) -> None:
        self.main = main  # the session's own transcript (sub-agents name it as their parent)
        self.forked = False
        self.reported: dict[str, tuple[int, ...]] | None = None  # model -> _KINDS
        self.reported_at = 0.0
        self.compactions: list[tuple[float, int]] = []


class UsageTracker:
    def __init__(
        self, ws: Workspace, *, home: str | None = None, window_s: float = WINDOW_S
    ) -> None:
        self.ws = ws
        self.home = home or claude_home()
        self.window_s = window_s
        self.prices = PriceTable({k: p.to_dict() for k, p in ws.settings.prices.items()})
        self.files: dict[str, _File] = {}
        self.sessions: dict[str, _Session] = {}
        self.responses: dict[tuple, Response] = {}
        self.recent: dict[str, deque] = {}
        self.bytes_read = 0
        self.skipped = 0
        self._dirs: dict[str, tuple[int, list[str], list[str]]] = {}
        self.current: dict[str, str] = {}  # domain -> the session transcript its hook named
        self._matchers = [folder_matcher(d.path) for d in ws.domains.values()]
        self._roots: dict[str, None] = {}  # projects dirs to scan, in order, real paths
        self._add_root(os.path.join(self.home, "projects"))
        for dom in ws.domains.values():
            for cfg in config_dirs_in_command(getattr(dom, "command", None)):
                self._add_root(os.path.join(cfg, "projects"))
        self._allowed = [
            os.path.realpath(r).rstrip(os.sep) + os.sep
            for r in (self.home, ws.root, *(d.path for d in ws.domains.values()))
            if r
        ]

    # ---- finding transcripts ------------------------------------------------------------
    def roots(self) -> list[str]:
        """The `projects` dirs scanned: Claude's home and the config dirs learned."""
        return list(self._roots)

    def _add_root(self, projects: str) -> None:
        real = os.path.realpath(projects)
        if real not in self._roots and len(self._roots) < MAX_ROOTS:
            self._roots[real] = None

    def _is_domain_folder(self, name: str) -> bool:
        return any(m(name) for m in self._matchers)

    def discover(self, extra: list[str] | None = None) -> list[str]:
        """Transcripts of sessions that ran inside a domain (by project folder name), their
        sub-agents, and `extra` (with their sub-agents): sessions first, then sub-agents, so
        that a sub-agent's parent is known when it is read."""
        found: dict[str, None] = dict.fromkeys(p for p in (extra or []) if p)
        for root in self._roots:
            for name in self._list(root)[1]:
                if self._is_domain_folder(name):
                    self._scan_folder(os.path.join(root, name), found)
        for path in extra or []:  # a reported session may lie outside the folders scanned
            shape = split_transcript(path)
            if shape is not None and not shape[3]:
                self._scan_subagents(path[: -len(".jsonl")], found)
        return sorted(found, key=lambda p: (os.sep + "subagents" + os.sep in p, p))

    def _scan_folder(self, folder: str, found: dict[str, None]) -> None:
        files, dirs = self._list(folder)
        for f in files:
            found[os.path.join(folder, f)] = None
        for d in dirs:
            self._scan_subagents(os.path.join(folder, d), found)

    def _scan_subagents(self, session_dir: str, found: dict[str, None]) -> None:
        if "subagents" not in self._list(session_dir)[1]:
            return
        pending = [(os.path.join(session_dir, "subagents"), 0)]
        while pending:  # subagents/ and its sub-folders (workflows/<run>/), bounded
            folder, depth = pending.pop()
            files, dirs = self._list(folder)
            for f in files:
                found[os.path.join(folder, f)] = None
            if depth < 2:
                pending.extend((os.path.join(folder, d), depth + 1) for d in dirs)

    def _list(self, path: str) -> tuple[list[str], list[str]]:
        """(regular `.jsonl` files, sub-directories) of a directory, no symlinks; listed again
        only when the directory changed, so a poll costs one stat per directory."""
        try:
            st = os.stat(path)
        except OSError:
            self._dirs.pop(path, None)
            return [], []
        cached = self._dirs.get(path)
        settled = time.time() - st.st_mtime > FRESH_DIR_S
        if cached is not None and cached[0] == st.st_mtime_ns and settled:
            return cached[1], cached[2]
        files: list[str] = []
        dirs: list[str] = []
        try:
            with os.scandir(path) as it:
                for n, entry in enumerate(it):
                    if n >= MAX_ENTRIES:
                        break
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            dirs.append(entry.name)
                        elif entry.name.endswith(".jsonl") and entry.is_file(follow_symlinks=False):
                            files.append(entry.name)
                    except OSError:
                        continue
        except OSError:
            return [], []
        self._dirs[path] = (st.st_mtime_ns, files, dirs)
        return files, dirs

    def acceptable(self, path: object) -> bool:
        """A transcript path an agent reported (through its hooks) is read only when it is a
        `.jsonl` file under Claude Code's home, the workspace's directories or a config dir
        already learned, or has the shape `<X>/projects/<a domain's folder>/<session>.jsonl`
        (or a sub-agent's below it), which makes `<X>` a config dir an agent uses: a hook
        payload must not make comm-node read /etc/passwd, or block on a FIFO."""
        return self._accept(path) is not None

    def _accept(self, path: object) -> str | None:
        """The real path of an acceptable transcript (see `acceptable`), else None."""
        if not isinstance(path, str) or not path.endswith(".jsonl") or "\x00" in path:
            return None
        real = os.path.realpath(path)
        if not real.endswith(".jsonl"):
            return None
        roots = [*self._allowed, *(r + os.sep for r in self._roots)]
        if any(real.startswith(r) for r in roots):
            return real
        shape = split_transcript(real)
        return real if shape is not None and self._is_domain_folder(shape[1]) else None

    def _learn_root(self, real: str) -> None:
        shape = split_transcript(real)
        if shape is not None and self._is_domain_folder(shape[1]):
            self._add_root(shape[0])

    def domain_of(self, cwd: object) -> str | None:
        if not isinstance(cwd, str):
            return None
        hits = self.ws.domain_of_path(cwd)
        return hits[0].name if hits else None

    # ---- reading ------------------------------------------------------------------------
    def poll(self, extra: list[str] | dict[str, str] | None = None) -> int:
        """Read what is new in every transcript; the number of responses counted or updated.
        `extra`: more transcripts, or {path: domain} for those a domain's hook reported
        (sessions' `transcript_path`, sub-agents' `agent_transcript_path`)."""
        pairs = extra.items() if isinstance(extra, dict) else ((p, None) for p in extra or [])
        paths = []
        for path, owner in pairs:
            real = self._accept(path)  # real: the scan finds the same file by the same name
            if real is None:
                continue
            self._learn_root(real)
            if owner:
                state = self._file(real)
                state.owner = owner
                if state.main:
                    self.current[owner] = real
            paths.append(real)
        changed = 0
        for path in self.discover(paths):
            changed += self._read(path)
        return changed

    def _file(self, path: str) -> _File:
        state = self.files.get(path)
        if state is None:
            state = self.files[path] = _File(path)
        return state

    def _session(self, state: _File) -> _Session:
        s = self.sessions.get(state.session)
        if s is None:
            s = self.sessions[state.session] = _Session(state.parent or state.path)
        return s

    def _read(self, path: str) -> int:
        state = self._file(path)
        try:
            st = os.stat(path)
        except OSError:
            self.files.pop(path, None)  # deleted: what it said stays counted
            return 0
        if not stat.S_ISREG(st.st_mode):
            return 0  # a directory, FIFO or device is no transcript
        if state.ino is not None and (st.st_ino != state.ino or st.st_size < state.offset):
            state.offset = 0  # replaced or truncated: read again; keys prevent doubles
        state.ino = st.st_ino
        state.size = st.st_size
        if st.st_size == state.offset:
            return 0
        try:  # non-blocking: a FIFO swapped in after the stat must not hang the engine
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except OSError:
            return 0
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return 0
            return self._read_from(fh, state)

    def _read_from(self, fh: BinaryIO, state: _File) -> int:
        changed = 0
        fh.seek(state.offset)
        while True:
            chunk = fh.read(4 * 1024 * 1024)
            if not chunk:
                break
            end = chunk.rfind(b"\n")
            if end == -1:
                if len(chunk) > MAX_LINE:  # an absurd line: skip it
                    state.offset += len(chunk)
                    self.skipped += 1
                    continue
                break  # a half-written last line: wait for the rest
            block = chunk[: end + 1]
            state.offset += len(block)
            self.bytes_read += len(block)
            for line in block.split(b"\n"):
                if line:
                    changed += self._dispatch(line, state)
            if end + 1 < len(chunk):
                fh.seek(state.offset)
        return changed

    def _dispatch(self, line: bytes, state: _File) -> int:
        if state.main:
            # the record's own timestamp is near the end; nested ones are escaped strings
            at = line.rfind(b'"timestamp":')
            m = _TS.match(line, at) if at >= 0 else None
            if m and m.group(1) > state.last_ts:
                state.last_ts = m.group(1)
        if b'"usage"' in line:
            return self._line(line, state)
        if b'"cost-state"' in line:
            self._cost_state(line, state)
        elif b'"compact_boundary"' in line:
            self._compact(line, state)
        elif state.domain is None and b'"cwd"' in line:
            self._learn_domain(line, state)
        return 0

    def _learn_domain(self, line: bytes, state: _File) -> None:
        try:
            state.domain = self.domain_of(json.loads(line).get("cwd"))
        except (ValueError, AttributeError, RecursionError):
            pass

    def _record(self, line: bytes, kind: str) -> dict | None:
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            self.skipped += 1
            return None
        return rec if isinstance(rec, dict) and rec.get("type") == kind else None

    def _parent_domain(self, state: _File) -> str | None:
        parent = self.files.get(state.parent) if state.parent else None
        return (parent.owner or parent.domain) if parent else None

    def _line(self, line: bytes, state: _File) -> int:
        rec = self._record(line, "assistant")
        if not rec:
            return 0
        msg = rec.get("message")
        if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            return 0
        model = msg.get("model")
        if not isinstance(model, str):
            model = "unknown"
        if model == "<synthetic>":
            return 0
        origin = rec.get("requestSessionId")
        if isinstance(origin, str) and origin != rec.get("sessionId"):
            # a record copied from the session this one was forked from
            self._session(state).forked = True
        domain = (
            state.owner
            or self._parent_domain(state)
            or self.domain_of(rec.get("cwd"))
            or state.domain
        )
        if domain is None:
            return 0
        state.domain = state.domain or domain
        key = (msg.get("id"), rec.get("requestId"))
        if key == (None, None):
            key = ("uuid", rec.get("uuid"))
        usage = msg["usage"]
        resp = Response(domain, model, usage, _ts(rec.get("timestamp")), state.session)
        old = self.responses.get(key)
        if old is not None and (old.output, old.total) >= (resp.output, resp.total):
            return 0
        resp.cost = self._price(resp, usage)
        self.responses[key] = resp
        if state.main and (state.context is None or resp.ts >= state.context[0]):
            state.context = (resp.ts, resp.input + resp.cache_write + resp.cache_read, model)
        self.recent.setdefault(domain, deque()).append((resp.ts, key))
        return 1

    def _price(self, r: Response, usage: dict) -> float | None:
        tools = usage.get("server_tool_use")
        searches = _int(tools.get("web_search_requests")) if isinstance(tools, dict) else 0
        return self.prices.cost(
            r.model,
            r.input,
            r.output,
            r.cw5,
            r.cw1h,
            r.cache_read,
            web_search=searches,
            fast=usage.get("speed") == "fast",
            us_geo=usage.get("inference_geo") == "us",
        )

    def _cost_state(self, line: bytes, state: _File) -> None:
        rec = self._record(line, "cost-state")
        if rec is None or not state.main or not isinstance(rec.get("modelUsage"), dict):
            return
        reported: dict[str, tuple[int, ...]] = {}
        for model, u in rec["modelUsage"].items():
            if not isinstance(u, dict) or not isinstance(model, str):
                continue
            cw = _int(u.get("cacheCreationInputTokens"))
            cw1h = min(_int(u.get("cacheCreationEphemeral1hInputTokens")), cw)
            tokens = (
                _int(u.get("inputTokens")),
                _int(u.get("outputTokens")),
                cw - cw1h,
                cw1h,
                _int(u.get("cacheReadInputTokens")),
            )
            key = _model_key(model)
            old = reported.get(key, (0,) * len(_KINDS))
            reported[key] = tuple(a + b for a, b in zip(old, tokens, strict=True))
        session = self._session(state)
        session.reported = reported
        # it counts what happened up to the records before it
        session.reported_at = _ts(state.last_ts) if state.last_ts else time.time()

    def _compact(self, line: bytes, state: _File) -> None:
        rec = self._record(line, "system")
        if rec is None or rec.get("subtype") != "compact_boundary":
            return
        meta = rec.get("compactMetadata")
        pre = _int(meta.get("preTokens")) if isinstance(meta, dict) else 0
        session = self._session(state)
        if len(session.compactions) < 10_000:
            session.compactions.append((_ts(rec.get("timestamp")), pre))

    # ---- results ------------------------------------------------------------------------
    def summary(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        out: dict[str, dict] = {name: _empty_totals() for name in self.ws.domains}
        unpriced: set[str] = set()
        window: dict[str, list[float]] = {}  # domain -> [tokens, first ts]
        # per (session, model): what the transcripts hold of what a cost-state counted
        logged: dict[tuple[str, str], list[int]] = {}
        session_domain: dict[str, str] = {}
        for r in self.responses.values():
            d = out.setdefault(r.domain, _empty_totals())  # a domain removed from the config
            self._add(d, r.model, r.vector(), r.cost, unpriced)
            d["responses"] += 1
            self._in_window(window, r.domain, r.ts, r.total, now)
            s = self.sessions.get(r.session) if r.session else None
            if s is not None and r.session is not None:  # the second test only narrows
                session_domain.setdefault(r.session, r.domain)
                if s.reported is not None and r.ts <= s.reported_at:
                    acc = logged.setdefault((r.session, _model_key(r.model)), [0] * len(_KINDS))
                    for i, v in enumerate(r.vector()):
                        acc[i] += v
        for key, s in self.sessions.items():
            domain = self._domain_of_session(s) or session_domain.get(key)
            if domain is None:
                continue
            d = out.setdefault(domain, _empty_totals())
            gap = self._add_unlogged(d, key, s, logged, unpriced)
            self._in_window(window, domain, s.reported_at, gap, now)
        for name, d in out.items():
            self._finish(name, d, window.get(name), now)
        return {
            "domains": out,
            "files": len(self.files),
            "roots": self.roots(),
            "unpriced_models": sorted(unpriced),
            "window_min": self.window_s / 60,
        }

    def _domain_of_session(self, s: _Session) -> str | None:
        main = self.files.get(s.main)
        return (main.owner or main.domain) if main else None

    def _add(self, d: dict, model: str, v: tuple, cost: float | None, unpriced: set) -> int:
        inp, out, cw5, cw1h, cr = v
        total = inp + out + cw5 + cw1h + cr
        d["input"] += inp
        d["output"] += out
        d["cache_write"] += cw5 + cw1h
        d["cache_read"] += cr
        d["total"] += total
        d["models"][model] = d["models"].get(model, 0) + total
        if cost is None:
            unpriced.add(model)
        else:
            d["cost_usd"] += cost
        return total

    def _add_unlogged(self, d: dict, key: str, s: _Session, logged: dict, unpriced: set) -> int:
        """Add what the session's last cost-state counted beyond its transcripts; the tokens."""
        d["compactions"] += len(s.compactions)
        covered = 0.0 if s.forked else s.reported_at  # a fork's cost-state is not used
        d["unlogged_est"] += sum(pre for ts, pre in s.compactions if ts > covered)
        if s.reported is None or s.forked:
            return 0
        gap_total = 0
        for model, rep in s.reported.items():
            got = logged.get((key, model), [0] * len(_KINDS))
            gap = tuple(max(0, a - b) for a, b in zip(rep, got, strict=True))
            if not any(gap):
                continue
            cost = self.prices.cost(model, *gap)
            total = self._add(d, model, gap, cost, unpriced)
            d["unlogged"] += total
            d["unlogged_cost_usd"] += cost or 0.0
            gap_total += total
        return gap_total

    def _in_window(self, window: dict, domain: str, ts: float, tokens: int, now: float) -> None:
        if tokens and ts >= now - self.window_s:
            w = window.setdefault(domain, [0, ts])
            w[0] += tokens
            w[1] = min(w[1], ts)

    def _finish(self, name: str, d: dict, window: list | None, now: float) -> None:
        if window:
            span = max(now - window[1], 60.0)
            d["tokens_per_min"] = round(window[0] / (span / 60.0), 1)
        d["cost_usd"] = round(d["cost_usd"], 6)
        d["unlogged_cost_usd"] = round(d["unlogged_cost_usd"], 6)
        dom = self.ws.domains.get(name)
        limit = dom.work_budget_tokens if dom else 0
        d["work_budget_tokens"] = limit or None
        d["remaining"] = (limit - d["total"]) if limit else None
        d["minutes_left"] = (
            round(max(d["remaining"], 0) / d["tokens_per_min"], 1)
            if limit and d["tokens_per_min"]
            else None
        )
        d["context"] = self.context_of(name)

    def context_of(self, name: str) -> dict | None:
        """The domain's context window use: the input, cache-write and cache-read tokens of
        the last response in its current session (the one its hook named, else its newest
        session), against the model's window; None before any response of that session (a
        session just started or cleared has nothing measured yet)."""
        current = self.current.get(name)
        if current is not None:
            state = self.files.get(current)
            last = state.context if state is not None else None
        else:
            mine = [
                f.context
                for f in self.files.values()
                if f.main and f.context is not None and (f.owner or f.domain) == name
            ]
            last = max(mine, default=None)
        if last is None:
            return None
        ts, tokens, model = last
        window = context_window(model, self.ws.settings.agents.context_window)
        return {
            "tokens": tokens,
            "window": window,
            "pct": context_pct(tokens, window),
            "model": model,
            "at": ts,
        }
