"""([cluster]) The other machines' events as this machine's engine received them, in a log of
their own, for the readers that are not the engine: a viewer room, the web room and
`comm-node log` (docs/cluster.md, "A room on any machine").

The engine's durable consumer of the events stream (cluster/events.py) appends each event
of another node to `.comm-node/remote.d/events.jsonl`, marked as its room shows it (`m2: ...`,
`data.node`), rotated and bounded as the event log is (protocol/events.py's writer). Never to
events.jsonl: that log is this machine's truth and what its publisher shares, so a remote
event written there would go back out as this machine's.

Once: each line carries the event's stream sequence (`data.stream_seq`). The consumer writes
before it acks, in stream order; a redelivery (an ack lost, or the engine stopped between the
write and the ack) of a sequence at or below the last one written is dropped, here and for
the in-process room. Only redeliveries are compared: a stream made anew (a wiped server)
starts its sequences again, and its first deliveries are always written.

No NATS here: the readers must not load it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

from comm_node_tui.protocol import jsonfast
from comm_node_tui.protocol.events import Event, EventLog, tail
from comm_node_tui.protocol.fileio import FILE_MODE

# In a folder of its own: the sandbox denies agents the whole folder, so the log's rotated
# files (events.1.jsonl ...) and a file made after an agent started are covered too. A name
# no domain can have (NAME_PATTERN has no dot): a domain sharing the workspace's folder has
# its protocol folder beside it, under its own name.
REMOTE_DIR = "remote.d"
REMOTE_LOG = os.path.join(REMOTE_DIR, "events.jsonl")
SEQ = "stream_seq"
POLL_S = 0.2  # as the viewer follows the local log


def remote_log_path(state_dir: str) -> str:
    return os.path.join(state_dir, REMOTE_LOG)


class RemoteLog:
    """The engine's writer (on the cluster client's loop thread only)."""

    def __init__(self, state_dir: str) -> None:
        self.path = remote_log_path(state_dir)
        self.log = EventLog(self.path)
        with contextlib.suppress(OSError):
            # made at once, empty: an agent started from now on has its folder denied by its
            # sandbox (which denies only what exists, adapters/claude/sandbox.py)
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
        last = tail(self.path, 1, lambda ev: isinstance(ev.data.get(SEQ), int))
        self.last_seq: int = last[0].data[SEQ] if last else 0

    def take(self, ev: Event, seq: int, redelivered: bool) -> bool:
        """Write one event from another node; False when it was written before."""
        if redelivered and 0 < seq <= self.last_seq:
            return False
        if seq > 0:
            ev.data = {**ev.data, SEQ: seq}
            self.last_seq = seq
        with contextlib.suppress(OSError):  # a full disk: the room still gets it
            self.log.append(ev)
        return True

    def close(self) -> None:
        self.log.close()


def recent(
    local_log: str, state_dir: str, n: int, where: Callable[[Event], bool] | None = None
) -> list[Event]:
    """The last `n` events of this machine's log and of the other machines' (by time),
    oldest first."""
    mine = tail(local_log, n, where)
    theirs = tail(remote_log_path(state_dir), n, where)
    if not theirs:
        return mine
    return sorted(mine + theirs, key=lambda ev: ev.ts)[-n:]


def _end(path: str) -> tuple[int, str, int]:
    """Where the file ends, as cluster/events.py's reader counts (inode, head, offset)."""
    from comm_node_tui.cluster.events import head_of

    now = head_of(path)
    return (0, "", 0) if now is None else now  # none yet: read from its start once made


class Follower:
    """Events appended to the remote log after the moment this was made (the position is
    taken here, not in the thread that reads: a caller knows nothing later is missed),
    across its rotations (cluster/events.py's reader). A damaged line is skipped, as
    protocol/events.py's follow() skips one."""

    def __init__(self, state_dir: str) -> None:
        self.path = remote_log_path(state_dir)
        self.pos = _end(self.path)

    def events(self, stop: Callable[[], bool], poll_s: float = POLL_S) -> Iterator[Event]:
        from comm_node_tui.cluster.events import read_after

        while not stop():
            if _end(self.path) == self.pos:  # nothing new: one stat, not a listing
                time.sleep(poll_s)
                continue
            lines, end = read_after(self.path, self.pos)
            self.pos = end
            for _pos, line in lines:
                try:
                    ev = Event.from_json(jsonfast.loads(line))
                except (ValueError, UnicodeDecodeError, RecursionError):
                    continue
                yield ev
            if not lines:
                time.sleep(poll_s)


def follow_in_thread(
    state_dir: str, on_event: Callable[[Event], None], stop: threading.Event
) -> Follower:
    """A viewer's second follower (the first follows the local log): the other machines'
    events to `on_event` from now on, in a daemon thread that ends with `stop`."""
    follower = Follower(state_dir)

    def run() -> None:
        for ev in follower.events(stop.is_set):
            on_event(ev)

    threading.Thread(target=run, name="cn-follow-remote", daemon=True).start()
    return follower
