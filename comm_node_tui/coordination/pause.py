"""The operator's stop, read: `.comm-node/guarded/paused.json`.

The file is `{"all": bool, "domains": [names], "paused_at": iso}`; no file means nothing is
paused. The hook reads it on every agent step, so this module is the standard library only
and one small file read (writing it is coordination/operator.py's). A file written before
per-domain pause (`{"paused_at": ...}` only) meant "everyone", and so does a file that cannot
be read: a stop that fails open is no stop.

It lives in `guarded/`, the folder a sandboxed agent sees read-only as a whole: walled as a
single file, its read-only mount was gone in a running sandbox once the operator's next pause
or resume renamed a new version over it, and a waiting command could lift its own pause. A
`paused.json` left in `.comm-node/` by an older comm-node still holds until the next pause or
resume moves it.
"""

from __future__ import annotations

import os

from comm_node_tui.protocol import jsonfast as json

PAUSE_FILE = "paused.json"
MAX_PAUSE_BYTES = 64 * 1024


class Pause:
    """What is stopped; read-only by convention. A plain slotted class: a NamedTuple loads
    `typing` and a frozen dataclass `inspect` (3-4 ms and ~12 ms on the hook's path)."""

    __slots__ = ("all", "domains", "paused_at")

    def __init__(
        self, all: bool = False, domains: tuple[str, ...] = (), paused_at: str | None = None
    ) -> None:
        self.all = all
        self.domains = tuple(domains)
        self.paused_at = paused_at

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pause):
            return NotImplemented
        return (self.all, self.domains, self.paused_at) == (
            other.all,
            other.domains,
            other.paused_at,
        )

    def __hash__(self) -> int:
        return hash((self.all, self.domains, self.paused_at))

    def __repr__(self) -> str:
        return f"Pause(all={self.all}, domains={self.domains}, paused_at={self.paused_at!r})"

    @property
    def any(self) -> bool:
        return self.all or bool(self.domains)

    def covers(self, domain: str) -> bool:
        """Whether `domain`'s agent is stopped (everyone, or it by name)."""
        return self.all or domain in self.domains

    def to_json(self) -> dict:
        return {"all": self.all, "domains": list(self.domains), "paused_at": self.paused_at}


NOT_PAUSED = Pause()


def pause_path(state_dir: str) -> str:
    return os.path.join(state_dir, "guarded", PAUSE_FILE)


def legacy_pause_path(state_dir: str) -> str:
    """Where an older comm-node kept it: still in force until a pause or resume moves it."""
    return os.path.join(state_dir, PAUSE_FILE)


def read_pause(state_dir: str) -> Pause:
    """The pause in force (NOT_PAUSED when there is no file)."""
    raw = None
    if os.path.islink(os.path.dirname(pause_path(state_dir))):
        return Pause(all=True)  # guarded/ is a link someone put there: not the operator's word
    for path in (pause_path(state_dir), legacy_pause_path(state_dir)):
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_PAUSE_BYTES + 1)
            break
        except FileNotFoundError:
            continue
        except OSError:
            return Pause(all=True)
    if raw is None:
        return NOT_PAUSED
    try:
        data = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_PAUSE_BYTES else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return Pause(all=True)
    at = data.get("paused_at")
    domains = data.get("domains")
    names = tuple(d for d in domains if isinstance(d, str)) if isinstance(domains, list) else ()
    return Pause(
        # no "all" key: a file from before per-domain pause, which stopped everyone
        all=bool(data.get("all", True)),
        domains=names,
        paused_at=at if isinstance(at, str) else None,
    )


def pause_reason(pause: Pause, domain: str) -> str:
    """One line for an agent (or a person) told no: names the pause and the way out."""
    if pause.all:
        return (
            "comm-node: the operator paused every agent; stop here and wait "
            "(`comm-node resume --all` ends it)."
        )
    return (
        f"comm-node: the operator paused {domain}; stop here and wait "
        f"(`comm-node resume {domain}` ends it)."
    )
