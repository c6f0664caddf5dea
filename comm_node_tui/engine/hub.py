"""The engine's events and its "something changed" signal, in one place.

emit() is the one entry point any thread may call: the control room's operator actions and
the tmux side-effect thread report through the Coordinator, whose emit is this one. A lock
serialises the log file and the recent list; subscribers run in the caller's thread (the
control room's bridge posts them on to the UI thread).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from comm_node_tui.protocol.events import Event, EventLog

RECENT_EVENTS = 500


class EventHub:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._subscribers: list[Callable[[Event], None]] = []
        self._change_listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Called (from the engine's thread) whenever the world changed, event or not."""
        self._change_listeners.append(callback)

    def changed(self) -> None:
        for callback in list(self._change_listeners):
            try:
                callback()
            except Exception:
                pass

    def emit(self, event: Event) -> None:
        with self._lock:
            try:
                self.log.append(event)
            except OSError:
                pass  # a full disk must not stop routing; the event still reaches subscribers
            self.recent.append(event)
        # Outside the lock: a subscriber may emit in turn.
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must never stop the engine
                pass

    def show(self, event: Event) -> None:
        """An event from another machine's engine ([cluster]): to the subscribers (the room)
        and the recent list, not to this machine's log (its own engine's log has it)."""
        with self._lock:
            self.recent.append(event)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                pass

    def close(self) -> None:
        with self._lock:
            self.log.close()
