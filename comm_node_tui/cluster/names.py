"""The NATS names of one workspace: a stream for its mail, buckets for its coordination and
agent state. Everything is prefixed by the project, so several workspaces can share a server."""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def token(name: str) -> str:
    """`name` as one NATS subject token / bucket-name part: itself when it is plain
    (letters, digits, '-', '_'), else a stable hash (dots and spaces would split a subject)."""
    if _SAFE.fullmatch(name):
        return name
    return "x" + hashlib.sha256(name.encode()).hexdigest()[:20]


class Names:
    def __init__(self, project: str) -> None:
        p = token(project)
        self.stream = f"CN_{p}_MAIL"
        self.subjects = f"cn.{p}.mail.>"
        self.coord_bucket = f"cn_{p}_coord"
        self.state_bucket = f"cn_{p}_state"
        self._mail = f"cn.{p}.mail."
        self._ops = f"cn.{p}.ops."
        self._events = f"cn.{p}.events."
        self.all_events = f"cn.{p}.events.*"
        self.events_stream = f"CN_{p}_EVENTS"

    def mail(self, domain: str) -> str:
        """The subject a message for `domain` is published on."""
        return self._mail + token(domain)

    def ops(self, node: str) -> str:
        """The subject an engine answers the operator's requests on (request/reply)."""
        return self._ops + token(node)

    def events(self, node: str) -> str:
        """The subject an engine publishes its agents' events on (the stream `events_stream`
        keeps them; the owner's own log is the record: cluster/events.py)."""
        return self._events + token(node)

    def events_consumer(self, node: str) -> str:
        """The durable consumer through which `node`'s engine reads the others' events: its
        place is kept while it is stopped."""
        return "events-" + token(node)

    def consumer(self, domain: str) -> str:
        """The durable consumer that holds `domain`'s place in the stream: one per domain, so
        a domain moved to another machine takes its unread mail along."""
        return "inbox-" + token(domain)
