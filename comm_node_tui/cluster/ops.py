"""The operator's side of an intervention on another machine's agent: find the engine that
owns the agent (the state bucket says which node publishes it), send it the request on its
ops subject and wait for its one-line answer (cluster/requests.py has the owner's side).

An owner that does not answer (no engine subscribed: NATS says so at once; or no reply in
time) is one line, "engine m2 (owner of api) does not answer (why); ...", and an event in
this machine's log; nothing is done here instead. "nothing done" only when NATS said nobody
listens: after a timeout the owner may still act, and the line says to look before asking
again. A caller that retries with the same `request_id` is answered from the owner's memory
(the text is typed once); a new request from the operator is a new id.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from comm_node_tui.cluster.client import ClusterClient, ClusterUnavailable
from comm_node_tui.cluster.names import Names
from comm_node_tui.cluster.requests import READ_ONLY
from comm_node_tui.cluster.state import published_state
from comm_node_tui.cluster.view import owners_of
from comm_node_tui.errors import CommNodeError
from comm_node_tui.protocol.events import Event
from comm_node_tui.workspace.model import Workspace

# How long the owner may take, by action: an inject waits for the agent's free prompt (up to
# 30 s in the operator service), a restart for the new process; the rest are quick.
# A peek is one tmux capture there: the room's preview waits for it in a worker, the CLI on
# the command line.
WAIT_S = {
    "inject": 60.0, "restart": 60.0, "kill": 30.0, "peek": 10.0,
    "review_files": 30.0, "review_patch": 30.0,  # git there, on a loaded machine
}  # fmt: skip
QUICK_S = 15.0
KEYS_TRIES = 3  # listings of the state bucket before an error
OWNERS_TTL_S = 5.0  # a listing of the state bucket serves owner() this long


class OwnerSilent(CommNodeError):
    """The engine that owns the agent did not answer: nothing was done."""


class RemoteOps:
    """One client for this room or CLI call (made on first use, made anew after it lost
    its connection); `emit` logs on this machine."""

    def __init__(
        self,
        ws: Workspace,
        emit: Callable[[Event], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ws = ws
        self.emit = emit
        self.clock = clock  # for the listing's age (a test freezes it)
        self.names = Names(ws.project)
        settings = ws.settings.cluster
        self.me = settings.node or socket.gethostname()
        self._client: ClusterClient | None = None
        self._lock = threading.Lock()  # the room acts from several worker threads
        self._listed: tuple[float, dict[str, str] | None] = (0.0, None)  # owners, when
        self.listings = 0  # of the state bucket (each a watch on the server): owner()'s cost

    def client(self) -> ClusterClient:
        with self._lock:
            c = self._client
            if c is not None and c.nc is not None and not c.up:
                c.close()  # lost: a non-persistent client never comes back by itself
                c = None
            if c is None:
                c = self._client = ClusterClient(
                    self.ws.settings.cluster, f"comm-node-operator-{self.me}-{os.getpid()}"
                )
            return c

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def nodes(self) -> dict[str, dict]:
        """node -> its last published state (cluster/relay.py publish_state)."""
        client = self.client()  # first: it imports nats the lean way (cluster/client.py)
        from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError

        bucket = self.names.state_bucket
        self.listings += 1

        async def read() -> dict[str, dict]:
            try:
                kv = await client.js.key_value(bucket)
            except BucketNotFoundError:
                return {}
            for attempt in range(KEYS_TRIES):
                try:
                    keys = await kv.keys()
                    break
                except NoKeysError:  # an empty bucket
                    return {}
                except Exception as exc:
                    # Listing keys is a watch that times out after 5 s: on a loaded machine
                    # it did, and an empty answer said the owner was gone. Try again; then
                    # say what failed, never "nobody publishes it".
                    if attempt + 1 == KEYS_TRIES:
                        raise CommNodeError(
                            f"cluster: could not list {bucket} ({type(exc).__name__}: "
                            f"{str(exc)[:120]})"
                        ) from None
            out = {}
            for key in keys:
                try:
                    entry = await kv.get(key)
                except KeyNotFoundError:  # gone since the listing
                    continue
                try:
                    doc = json.loads(entry.value or b"")
                except ValueError:
                    continue
                doc = published_state(doc)
                if doc is not None:
                    out[doc["node"]] = doc
            return out

        return client.call(read)

    def owner(self, agent: str) -> str:
        """The node whose engine publishes `agent` (the freshest, if a domain moved: one rule,
        cluster/view.py owners_of): what this machine's engine last received while that is
        fresh (its copy for the readers, a file read), else the state bucket, listed at most
        every OWNERS_TTL_S (a room's preview asks for a remote pane every second)."""
        node = self._known_owner(agent)
        if node is None:
            node = self._listed_owners().get(agent)
        if node is None:
            raise CommNodeError(
                f"no engine on another machine publishes {agent}: is its machine's engine "
                "running? (`comm-node cluster status`)"
            )
        return node

    def _known_owner(self, agent: str) -> str | None:
        from comm_node_tui.cluster.state import STALE_S
        from comm_node_tui.cluster.view import ViewError, read_view

        try:
            nodes = read_view(self.ws.paths.state)
        except ViewError:
            return None  # not the engine's copy: ask the bucket
        node = owners_of(nodes, frozenset()).get(agent)
        if node is None or node == self.me or time.time() - nodes[node]["ts"] >= STALE_S:
            return None  # none, or this machine's engine stopped: its copy may be old
        return node

    def _listed_owners(self) -> dict[str, str]:
        with self._lock:
            at, owners = self._listed
        if owners is None or self.clock() - at >= OWNERS_TTL_S:
            others = {n: d for n, d in self.nodes().items() if n != self.me}
            owners = owners_of(others, frozenset())
            with self._lock:
                self._listed = (self.clock(), owners)
        return owners

    def ask(
        self,
        action: str,
        agent: str,
        args: dict | None = None,
        *,
        node: str | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """The owner's one line for `action` on `agent`; CommNodeError (its exit code kept)
        when the owner refused, OwnerSilent when it did not answer."""
        answer = self._request(action, agent, args, node, request_id, timeout)
        return str(answer["line"])

    def read(self, action: str, agent: str, args: dict | None = None) -> object:
        """What the owner sent back for a read-only request (its `data`: the review's files,
        a patch), as it came: the caller checks its shape (another machine's bytes)."""
        assert action in READ_ONLY
        return self._request(action, agent, args, None, None, None).get("data")

    def _request(
        self,
        action: str,
        agent: str,
        args: dict | None,
        node: str | None,
        request_id: str | None,
        timeout: float | None,
    ) -> dict:
        node = node or self.owner(agent)
        rid = request_id or uuid.uuid4().hex
        limit = timeout if timeout is not None else WAIT_S.get(action, QUICK_S)
        payload = json.dumps(
            {"id": rid, "action": action, "agent": agent, "args": args or {}, "from": self.me}
        ).encode()
        client = self.client()
        subject = self.names.ops(node)

        async def request() -> bytes:
            msg = await client.nc.request(subject, payload, timeout=limit)
            return msg.data

        try:
            client.ensure()
            data = client.run(request, limit + 2)
        except (ClusterUnavailable, Exception) as exc:
            import nats.errors

            # Only "no responders" proves the request reached nobody. After a timeout the
            # owner may have it and still be acting (an inject waits for a prompt): saying
            # "nothing done" would invite a second request, typed a second time.
            outcome = "it may still be done there: look before asking again"
            if isinstance(exc, ClusterUnavailable) and client.up:
                why = "no answer in time"
            elif isinstance(exc, ClusterUnavailable):
                raise  # the server itself: its own one line
            elif isinstance(exc, nats.errors.NoRespondersError):
                why, outcome = "no engine listening", "nothing done"
            elif isinstance(exc, nats.errors.TimeoutError | TimeoutError):
                why = f"no answer within {limit:g} s"
            else:
                why = type(exc).__name__
            owner = f"engine {node} (owner of {agent})" if agent != "*" else f"engine {node}"
            if action in READ_ONLY:  # a preview asks every second: its one line says it
                raise OwnerSilent(f"{owner} does not answer ({why})") from None
            self.emit(
                Event(
                    "cluster.unanswered",
                    f"{action} {agent}: {owner} does not answer ({why}); {outcome}",
                    agent=agent,
                    level="error",
                    data={"node": node, "action": action, "id": rid},
                )
            )
            raise OwnerSilent(f"{owner} does not answer ({why}); {outcome}") from None
        try:
            answer = json.loads(data)
            ok, line = bool(answer["ok"]), str(answer["line"])
        except (ValueError, KeyError, TypeError):
            raise CommNodeError(
                f"engine {node}: an answer that is not one (request {rid})"
            ) from None
        if ok:
            return answer
        err = CommNodeError(line)
        code = answer.get("exit")
        if isinstance(code, int) and not isinstance(code, bool) and code > 0:
            err.exit_code = code
        raise err
