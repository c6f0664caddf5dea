"""What the engine's monitors share: the workspace and its services, the clock, how to
report, and the few pieces of plain state more than one monitor reads.

Each piece of shared state has one writer (named below); the others only read it, and all of
them run on the engine's event-loop thread. A monitor's own bookkeeping stays in the monitor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from comm_node_tui.coordination.budgets import Budgets
from comm_node_tui.coordination.coordinator import Coordinator
from comm_node_tui.coordination.ledger import Ledger
from comm_node_tui.engine.agent_state import Health
from comm_node_tui.engine.clock import Clock, SystemClock
from comm_node_tui.engine.router import Router
from comm_node_tui.protocol.events import Event
from comm_node_tui.workspace.model import Workspace


@dataclass
class EngineContext:
    ws: Workspace  # replaced on a config reload (DomainMonitor): read it, never keep it
    coord: Coordinator
    ledger: Ledger
    budgets: Budgets
    router: Router
    emit: Callable[[Event], None]
    changed: Callable[[], None]  # the world changed (progress, screens), event or not
    clock: Clock = field(default_factory=SystemClock)
    # Each agent's status.json as last read (StatusMonitor writes it).
    statuses: dict[str, dict] = field(default_factory=dict)
    # The tmux view per domain: pane, pid, dead, screen state (ScreenMonitor writes it).
    panes: dict[str, dict] = field(default_factory=dict)
    # Each agent's liveness judgement (Watchdog writes it).
    health: dict[str, Health] = field(default_factory=dict)
    # False from run() until the screens were read once: until then an agent is not judged
    # "silent" for want of a pane that simply was not looked at yet (ScreenMonitor sets it).
    panes_polled: bool = True
