"""Telling someone who is not looking at the room: `notify-send` and a webhook ([notify]).

The engine hands every World's needs (engine/needs.py) to `Notifier.observe`; only a key not
seen in the previous list is news (an item that goes and comes back is news again), and the
first list after start is taken as known (what waited before the engine started was there
to see). Per kind, at most one notification in `min_interval_s`: a burst of prompts rings
once, and the list in the room says the rest.

Sending is blocking IO (a POST, a process): one worker thread does it, off the engine's
loop, each with a short timeout; a queue of bounded size between them (when it is full, a
notification is dropped rather than the engine held up). A failure is one warn event, and no
other until a send succeeds again: a dead receiver never becomes a retry storm, nor an event
per item. The webhook's URL and headers are secrets: no event, log line or error text holds
them (workspace/settings.py `mask_url`).
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from comm_node_tui.engine.context import EngineContext
from comm_node_tui.engine.needs import Need, one_line
from comm_node_tui.protocol.events import Event
from comm_node_tui.workspace.settings import NotifySettings, mask_url

QUEUE_SIZE = 64
TITLE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Note:
    """One notification, as text that is safe anywhere (one line, no control characters)."""

    title: str
    body: str
    need: Need

    @classmethod
    def of(cls, project: str, need: Need) -> Note:
        title = one_line(f"comm-node {project}: {need.agent} needs you ({need.kind})", TITLE_CHARS)
        return cls(title, one_line(need.what), need)


class Notifier:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._known: set[str] | None = None  # the keys of the previous list; None: none yet
        self._last: dict[str, float] = {}  # kind -> when it last notified (monotonic)
        self._queue: queue.Queue[tuple[Note, NotifySettings] | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._failing: set[str] = set()  # channels whose last send failed (worker thread)
        self.sent = 0  # notifications handed to the worker (for the tests and `status`)
        self._which: tuple[float, bool] | None = None  # (when looked, notify-send found)

    def active(self) -> bool:
        """Whether any channel could carry a notification (else the engine skips the work)."""
        s = self.ctx.ws.settings.notify
        if s.webhook:
            return True
        if not s.desktop:
            return False
        # looked up once a minute, not on every batch of hook changes (a PATH walk)
        now = self.ctx.clock.monotonic()
        if self._which is None or now - self._which[0] >= 60.0:
            self._which = (now, shutil.which("notify-send") is not None)
        return self._which[1]

    def observe(self, needs: Sequence[Need]) -> list[Note]:
        """Notify what is new in `needs`; the notes handed to the worker."""
        settings = self.ctx.ws.settings.notify
        remote = self.ctx.router.remote_domains
        if remote and not settings.remote:
            # [cluster] The engine that owns an agent notifies for it; here its need is in
            # the room's list only (docs/cluster.md).
            needs = [n for n in needs if n.agent not in remote]
        keys = {n.key for n in needs}
        known, self._known = self._known, keys
        if known is None:
            return []
        now = self.ctx.clock.monotonic()
        notes = []
        for need in needs:
            if need.key in known or not settings.wants(need.kind):
                continue
            last = self._last.get(need.kind)
            if last is not None and now - last < settings.min_interval_s:
                continue  # rate limited: the room's list has it
            self._last[need.kind] = now
            note = Note.of(self.ctx.ws.project, need)
            try:
                self._queue.put_nowait((note, settings))
            except queue.Full:
                continue  # the worker is stuck on a slow receiver: never hold the engine
            notes.append(note)
            self.sent += 1
        if notes:
            self._start()
        return notes

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="cn-notify", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Let the worker finish what it holds (each send has its own timeout)."""
        if self._thread is not None and self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                return
            self._thread.join(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued notification was sent or failed (tests, shutdown)."""
        self.stop(timeout)

    # ---- the worker thread --------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            note, settings = item
            if settings.webhook:
                self._try("webhook", settings, partial(post, note, settings))
            if settings.desktop:
                exe = shutil.which("notify-send")
                if exe is not None:
                    self._try("notify-send", settings, partial(desktop, exe, note, settings))

    def _try(self, channel: str, settings: NotifySettings, send: Callable[[], None]) -> None:
        try:
            send()
        except Exception as exc:  # any failure: one warn event, then quiet until it works
            if channel not in self._failing:
                self._failing.add(channel)
                where = mask_url(settings.webhook) if channel == "webhook" else "notify-send"
                self.ctx.emit(
                    Event(
                        "notify.failed",
                        f"notification by {channel} failed ({where}): "
                        f"{scrub(one_line(exc) or type(exc).__name__, settings)}; "
                        "no more warnings until it works again",
                        level="warn",
                        data={"channel": channel, "error": type(exc).__name__},
                    )
                )
        else:
            self._failing.discard(channel)


def scrub(text: str, settings: NotifySettings) -> str:
    """Error text with the webhook's URL (and its parts) and header values taken out."""
    secrets = [settings.webhook, *settings.headers.values()]
    rest = settings.webhook.partition("://")[2]
    secrets += [p for p in rest.replace("@", "/").replace("?", "/").split("/")[1:] if p]
    for s in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def post(note: Note, settings: NotifySettings) -> None:
    """One POST: ntfy's (a text body, Title and Tags headers) or plain JSON."""
    need = note.need
    if settings.format == "ntfy":
        data = note.body.encode("utf-8")
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            # header values must be latin-1 text: an agent's name in another script is lost
            "Title": note.title.encode("ascii", "replace").decode("ascii"),
            "Tags": str(need.kind),
        }
    else:
        data = json.dumps(
            {
                "title": note.title,
                "body": note.body,
                "kind": str(need.kind),
                "agent": need.agent,
                "what": need.what,
                "since": need.since,
                "key": need.key,
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
    headers.update(settings.headers)
    req = urllib.request.Request(settings.webhook, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=settings.timeout_s) as resp:
        resp.read(1024)


def desktop(exe: str, note: Note, settings: NotifySettings) -> None:
    """notify-send; its argv holds plain text only (`--` first: a body starting with a dash
    is not an option)."""
    # Most notification daemons read a little HTML in the body: an agent's text is escaped.
    body = note.body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    subprocess.run(
        [exe, "--app-name=comm-node", "--", note.title, body],
        timeout=settings.timeout_s,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
