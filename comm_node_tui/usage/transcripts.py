"""Real token use from Claude Code transcripts, read incrementally.

Transcripts live in `$CLAUDE_CONFIG_DIR/projects/<cwd, non-alphanumerics as '-'>/<session>.jsonl`
(default `~/.claude`); the hooks also tell each session's exact path. One API response is
written as several lines sharing `message.id` + `requestId`, the early ones with placeholder
`output_tokens`: each response is counted once, with the largest usage seen for it. Only new
bytes are read on each poll; a half-written last line waits for its end; garbage lines,
unknown record types and `<synthetic>` (error) messages are skipped; a deleted, truncated or
replaced file is read again from its start (responses already counted are not doubled).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections import deque
from datetime import datetime

from comm_node_tui.usage.prices import PriceTable
from comm_node_tui.workspace.model import Workspace

WINDOW_S = 30 * 60
MAX_LINE = 16 * 1024 * 1024
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


def project_dir_name(path: str) -> str:
    return _NON_ALNUM.sub("-", path)


def claude_home() -> str:
    return os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")


class Response:
    __slots__ = ("cache_read", "cw1h", "cw5", "domain", "input", "model", "output", "ts")

    def __init__(self, domain: str, model: str, usage: dict, ts: float) -> None:
        self.domain = domain
        self.model = model
        self.ts = ts
        self.input = _int(usage.get("input_tokens"))
        self.output = _int(usage.get("output_tokens"))
        self.cache_read = _int(usage.get("cache_read_input_tokens"))
        split = usage.get("cache_creation")
        total_cw = _int(usage.get("cache_creation_input_tokens"))
        if isinstance(split, dict):
            self.cw1h = _int(split.get("ephemeral_1h_input_tokens"))
            self.cw5 = max(total_cw - self.cw1h, _int(split.get("ephemeral_5m_input_tokens")))
        else:
            self.cw1h, self.cw5 = 0, total_cw

    @property
    def cache_write(self) -> int:
        return self.cw5 + self.cw1h

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read


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
    }


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def _ts(text: object) -> float:
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


class _File:
    __slots__ = ("domain", "ino", "offset", "owner", "size")

    def __init__(self) -> None:
        self.offset = 0
        self.ino: int | None = None
        self.size = 0
        self.domain: str | None = None
        # the domain whose hook reported this transcript: it wins over the cwd, which
        # cannot tell apart domains that share a directory
        self.owner: str | None = None


class UsageTracker:
    def __init__(
        self, ws: Workspace, *, home: str | None = None, window_s: float = WINDOW_S
    ) -> None:
        self.ws = ws
        self.home = home or claude_home()
        self.window_s = window_s
        self.prices = PriceTable(ws.config.get("prices"))
        self.files: dict[str, _File] = {}
        self.responses: dict[tuple, Response] = {}
        self.recent: dict[str, deque] = {}
        self.bytes_read = 0
        self.skipped = 0

    # ---- finding transcripts ------------------------------------------------------------
    def discover(self, extra: list[str] | None = None) -> list[str]:
        """Transcripts of sessions that ran inside a domain (by project folder name)."""
        found: set[str] = set(p for p in (extra or []) if p)
        projects = os.path.join(self.home, "projects")
        prefixes = [project_dir_name(d.path) for d in self.ws.domains.values()]
        try:
            dirs = os.listdir(projects)
        except OSError:
            dirs = []
        for name in dirs:
            if not any(name == p or name.startswith(p + "-") for p in prefixes):
                continue
            folder = os.path.join(projects, name)
            try:
                for f in os.listdir(folder):
                    if f.endswith(".jsonl"):
                        found.add(os.path.join(folder, f))
            except OSError:
                continue
        return sorted(found)

    def acceptable(self, path: object) -> bool:
        """A transcript path an agent reported (through its hooks) is read only when it is a
        `.jsonl` file under Claude Code's home or the workspace's directories: a hook payload
        must not make comm-node read /etc/passwd, or block on a FIFO."""
        if not isinstance(path, str) or not path.endswith(".jsonl") or "\x00" in path:
            return False
        real = os.path.realpath(path)
        roots = [self.home, self.ws.root, *(d.path for d in self.ws.domains.values())]
        return any(real.startswith(os.path.realpath(r).rstrip(os.sep) + os.sep) for r in roots if r)

    def domain_of(self, cwd: object) -> str | None:
        if not isinstance(cwd, str):
            return None
        hits = self.ws.domain_of_path(cwd)
        return hits[0].name if hits else None

    # ---- reading ------------------------------------------------------------------------
    def poll(self, extra: list[str] | dict[str, str] | None = None) -> int:
        """Read what is new in every transcript; the number of responses counted or updated.
        `extra`: more transcripts, or {path: domain} for those a domain's hook reported."""
        changed = 0
        if isinstance(extra, dict):
            extra = {p: o for p, o in extra.items() if self.acceptable(p)}
            for path, owner in extra.items():
                self.files.setdefault(path, _File()).owner = owner
            extra = list(extra)
        elif extra:
            extra = [p for p in extra if self.acceptable(p)]
        for path in self.discover(extra):
            changed += self._read(path)
        return changed

    def _read(self, path: str) -> int:
        state = self.files.setdefault(path, _File())
        try:
            st = os.stat(path)
        except OSError:
            self.files.pop(path, None)  # deleted: what it said stays counted
            return 0
        if state.ino is not None and (st.st_ino != state.ino or st.st_size < state.offset):
            state.offset = 0  # replaced or truncated: read again; keys prevent doubles
        if not stat.S_ISREG(st.st_mode):
            return 0  # a directory, FIFO or device is no transcript
        state.ino = st.st_ino
        state.size = st.st_size
        if st.st_size == state.offset:
            return 0
        changed = 0
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed below; the read loop is long)
        except OSError:
            return 0
        with fh:
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
                    if b'"usage"' in line:
                        changed += self._line(line, state)
                    elif state.domain is None and b'"cwd"' in line:
                        self._learn_domain(line, state)
                if end + 1 < len(chunk):
                    fh.seek(state.offset)
        return changed

    def _learn_domain(self, line: bytes, state: _File) -> None:
        try:
            state.domain = self.domain_of(json.loads(line).get("cwd"))
        except (ValueError, AttributeError, RecursionError):
            pass

    def _line(self, line: bytes, state: _File) -> int:
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            self.skipped += 1
            return 0
        if not isinstance(rec, dict) or rec.get("type") != "assistant":
            return 0
        msg = rec.get("message")
        if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            return 0
        model = msg.get("model") if isinstance(msg.get("model"), str) else "unknown"
        if model == "<synthetic>":
            return 0
        domain = state.owner or self.domain_of(rec.get("cwd")) or state.domain
        if domain is None:
            return 0
        state.domain = state.domain or domain
        key = (msg.get("id"), rec.get("requestId"))
        if key == (None, None):
            key = ("uuid", rec.get("uuid"))
        resp = Response(domain, model, msg["usage"], _ts(rec.get("timestamp")))
        old = self.responses.get(key)
        if old is not None and (old.output, old.total) >= (resp.output, resp.total):
            return 0
        self.responses[key] = resp
        self.recent.setdefault(domain, deque()).append((resp.ts, key))
        return 1

    # ---- results ------------------------------------------------------------------------
    def summary(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        out: dict[str, dict] = {}
        unpriced: set[str] = set()
        for name in self.ws.domains:
            out[name] = _empty_totals()
        window_tokens: dict[str, int] = {}
        window_first: dict[str, float] = {}
        for r in self.responses.values():
            d = out.setdefault(r.domain, _empty_totals())  # a domain removed from the config
            d["input"] += r.input
            d["output"] += r.output
            d["cache_write"] += r.cache_write
            d["cache_read"] += r.cache_read
            d["total"] += r.total
            d["responses"] += 1
            d["models"][r.model] = d["models"].get(r.model, 0) + r.total
            cost = self.prices.cost(r.model, r.input, r.output, r.cw5, r.cw1h, r.cache_read)
            if cost is None:
                unpriced.add(r.model)
            else:
                d["cost_usd"] += cost
            if r.ts >= now - self.window_s:
                window_tokens[r.domain] = window_tokens.get(r.domain, 0) + r.total
                window_first[r.domain] = min(window_first.get(r.domain, r.ts), r.ts)
        for name, d in out.items():
            tokens = window_tokens.get(name, 0)
            if tokens:
                span = max(now - window_first[name], 60.0)
                d["tokens_per_min"] = round(tokens / (span / 60.0), 1)
            d["cost_usd"] = round(d["cost_usd"], 6)
            dom = self.ws.domains.get(name)
            limit = dom.work_budget_tokens if dom else 0
            d["work_budget_tokens"] = limit or None
            d["remaining"] = (limit - d["total"]) if limit else None
            d["minutes_left"] = (
                round(max(d["remaining"], 0) / d["tokens_per_min"], 1)
                if limit and d["tokens_per_min"]
                else None
            )
        return {
            "domains": out,
            "files": len(self.files),
            "unpriced_models": sorted(unpriced),
            "window_min": self.window_s / 60,
        }
