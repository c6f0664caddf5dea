"""Every event type comm-node writes, in one catalogue: what it means and whether the
control room raises it as an alert (and how loudly). tests/test_event_types.py checks that
the code writes no type missing here. Stdlib only (the hook and the agent CLI log events).
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    # agents: liveness and state (engine/agent_state.py, docs/claude-code.md)
    AGENT_STATE = "agent.state"  # the hooks or the agent's CLI changed its state or task
    AGENT_SCREEN = "agent.screen"  # its screen's state changed
    AGENT_STARTED = "agent.started"
    AGENT_RESTARTED = "agent.restarted"
    AGENT_KILLED = "agent.killed"
    AGENT_DEAD = "agent.dead"  # its pane or process is gone
    AGENT_LOST = "agent.lost"  # gone for heartbeat_lost_s: locks and claims released
    AGENT_STUCK = "agent.stuck"  # busy, no hook, a screen that does not move
    # the same failing tool call spiral_repeats times, or busy with no write in its scope
    # for spiral_minutes (engine/spiral.py); paused too when [agents] spiral_policy = "pause"
    AGENT_SPIRAL = "agent.spiral"
    AGENT_STALE = "agent.stale"  # busy, silent, nothing to look at
    AGENT_RECOVERED = "agent.recovered"
    AGENT_REGISTERED = "agent.registered"  # kickoff: its first heartbeat
    AGENT_OTHER_SESSION = "agent.other_session"  # another claude run in its folder
    AGENT_INJECTED = "agent.injected"
    AGENT_INJECT_REFUSED = "agent.inject_refused"
    AGENT_INJECT_WAITING = "agent.inject_waiting"  # someone's text is in the box: we wait
    AGENT_TURN_STARTED = "agent.turn_started"  # its hook proved a delivery's turn started
    AGENT_ANSWERED = "agent.answered"  # the Stop after a delivery's turn
    AGENT_NUDGE_UNSTARTED = "agent.nudge_unstarted"  # a nudge started no turn: tried again
    AGENT_INTERRUPTED = "agent.interrupted"
    AGENT_APPROVED = "agent.approved"
    AGENT_DENIED = "agent.denied"
    AGENT_CONTEXT_HIGH = "agent.context_high"  # its last request filled context_alert_pct
    AGENT_HANDOFF = "agent.handoff"  # the operator asked it for a hand-off note and a /clear
    # messages
    MESSAGE_ROUTED = "message.routed"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_DEFERRED = "message.deferred"
    MESSAGE_ARRIVED = "message.arrived"  # from another machine, through NATS (cluster/relay.py)
    OUTBOX_UNREADABLE = "outbox.unreadable"
    OPERATOR_MESSAGE = "operator.message"
    OPERATOR_PAUSE = "operator.pause"
    OPERATOR_RESUME = "operator.resume"
    OPERATOR_FAILED = "operator.failed"  # an intervention from the control room failed
    # an intervention another machine's room asked this engine for (cluster/relay.py)
    OPERATOR_REMOTE = "operator.remote"
    # locks, tasks, budgets, artifacts
    LOCK_GRANTED = "lock.granted"
    LOCK_REFUSED = "lock.refused"
    LOCK_RELEASED = "lock.released"
    LOCK_RENEWED = "lock.renewed"
    LOCK_EXPIRED = "lock.expired"
    LOCKS_INVALID = "locks.invalid"
    TASK_READY = "task.ready"
    TASK_CLAIMED = "task.claimed"
    TASK_ASSIGNED = "task.assigned"
    TASK_DONE = "task.done"
    TASK_FAILED = "task.failed"
    TASK_RELEASED = "task.released"
    TASK_VERIFY_FAILED = "task.verify_failed"  # `task done` refused by the verify gate
    TASK_PARKED = "task.parked"  # max_attempts failed attempts: no claims until reopened
    TASK_OVERRIDE = "task.override"  # the operator closed a task without its gate
    TASK_REOPENED = "task.reopened"
    TASKS_LOADED = "tasks.loaded"
    TASKS_CHANGED = "tasks.changed"
    TASKS_EDITED = "tasks.edited"  # `task add` / `task edit` wrote tasks.toml
    TASKS_WRITEBACK_FAILED = "tasks.writeback_failed"  # `bd` failed: the overlay still holds it
    BUDGET_GRANTED = "budget.granted"
    BUDGET_DENIED = "budget.denied"
    BUDGET_WORK_EXHAUSTED = "budget.work_exhausted"
    ARTIFACT_PUBLISHED = "artifact.published"
    ARTIFACT_ANNOUNCED = "artifact.announced"
    # edits and boundaries
    EDIT_DENIED = "edit.denied"
    TOOL_DENIED = "tool.denied"
    BOUNDARY_VIOLATION = "boundary.violation"
    BOUNDARY_RESOLVED = "boundary.resolved"
    BOUNDARY_UNAVAILABLE = "boundary.unavailable"
    BOUNDARY_CHECK = "boundary.check"
    BOUNDARY_COMMIT_BLOCKED = "boundary.commit_blocked"
    BOUNDARY_COMMIT_CHECKED = "boundary.commit_checked"
    # the merge queue (integration/queue.py)
    MERGE_QUEUED = "merge.queued"
    MERGE_LANDED = "merge.landed"  # merged, checked and fast-forwarded into the integration branch
    MERGE_CONFLICT = "merge.conflict"  # back to the domain with the files
    MERGE_FAILED = "merge.failed"  # a check failed, the branch vanished, git refused
    MERGE_SCRATCH_CLEANED = "merge.scratch_cleaned"  # the queue's own worktree was dirty/broken
    MERGE_QUEUE_INVALID = "merge.queue_invalid"  # merge-queue.json unreadable: left as it is
    # review comments from the room (operator/actions.py)
    REVIEW_COMMENT = "review.comment"
    # Claude Code's Bash sandbox (adapters/claude/sandbox.py, issue 23): a command's write
    # (or read) the OS refused, with the domain and the path; the sandbox written for a
    # domain; and why it cannot start here (the agent then fails closed: it does not start);
    # walls from a shared folder's peers not passed (its command has its own --settings)
    BOUNDARY_SANDBOX_REFUSED = "boundary.sandbox_refused"
    SANDBOX_WRITTEN = "sandbox.written"
    SANDBOX_UNAVAILABLE = "sandbox.unavailable"
    SANDBOX_NOT_WALLED = "sandbox.not_walled"
    # limits per agent (panes/limits.py): none could be applied where they were asked for
    LIMITS_UNAVAILABLE = "limits.unavailable"
    # the workspace, the engine, tmux
    CONFIG_INVALID = "config.invalid"
    CONFIG_RELOADED = "config.reloaded"
    DOMAIN_MISSING = "domain.missing"
    DOMAIN_BACK = "domain.back"
    DOMAIN_UNWRITABLE = "domain.unwritable"
    STATUS_INVALID = "status.invalid"
    ENGINE_STARTED = "engine.started"
    ENGINE_STOPPED = "engine.stopped"
    ENGINE_FAULT = "engine.fault"
    LEDGER_COMPACT_FAILED = "ledger.compact_failed"
    HOOK_ERROR = "hook.error"
    TMUX_SESSION = "tmux.session"
    TMUX_DOWN = "tmux.down"
    TMUX_SESSION_LOST = "tmux.session_lost"
    TMUX_SESSION_BACK = "tmux.session_back"
    TMUX_UNAVAILABLE = "tmux.unavailable"
    TMUX_AVAILABLE = "tmux.available"
    # the engine's quiet control client could not attach (why): it reads through tmux
    # processes meanwhile and tries again every CONTROL_RETRY_S (engine/screens.py)
    TMUX_CONTROL_FAILED = "tmux.control_failed"
    TMUX_ACTION_FAILED = "tmux.action_failed"
    # engines on several machines (cluster/relay.py, docs/cluster.md)
    CLUSTER_STARTING = "cluster.starting"
    CLUSTER_UP = "cluster.up"
    CLUSTER_DOWN = "cluster.down"  # mail for other machines waits; local work goes on
    CLUSTER_FAULT = "cluster.fault"  # setting up JetStream failed
    CLUSTER_BAD_REQUEST = "cluster.bad_request"  # an intervention request that did not parse
    # the engine that owns an agent did not answer an intervention: nothing was done
    CLUSTER_UNANSWERED = "cluster.unanswered"
    # a viewer's file watch failed: it refreshes on its timer instead (tui/bridge.py)
    VIEWER_WATCH_FAILED = "viewer.watch_failed"
    # integration: conflicts ahead of time (engine/conflicts.py), the integration
    # coordinator (engine/integration_monitor.py)
    INTEGRATION_CONFLICT = "integration.conflict"  # two domains' work cannot be merged
    INTEGRATION_CONFLICT_CLEARED = "integration.conflict_cleared"  # ... and now it can
    INTEGRATION_CHECK_FAILED = "integration.check_failed"  # git could not answer for a domain
    INTEGRATION_CHECK_BACK = "integration.check_back"  # ... and now it can again
    INTEGRATION_COORDINATOR_STARTED = "integration.coordinator_started"
    INTEGRATION_COORDINATOR_FAILED = "integration.coordinator_failed"
    INTEGRATION_REPORT = "integration.report"  # the coordinator wrote (or rewrote) its report
    # notifications to people outside the room (engine/notify.py)
    NOTIFY_FAILED = "notify.failed"  # a webhook or notify-send failed (once until it works)
    # the kickoff meeting and the demo
    KICKOFF_STARTED = "kickoff.started"
    KICKOFF_RETRY = "kickoff.retry"
    KICKOFF_UNREGISTERED = "kickoff.unregistered"
    KICKOFF_DONE = "kickoff.done"
    DEMO_RESTART = "demo.restart"
    DEMO_RESTART_FAILED = "demo.restart_failed"
    DEMO_FAULT = "demo.fault"
    DEMO_DONE = "demo.done"


# What the control room raises as an alert (a mark on the agent's row and a notice), and how.
ALERTS: dict[EventType, str] = {
    EventType.AGENT_LOST: "error",
    EventType.AGENT_DEAD: "error",
    EventType.AGENT_STUCK: "warning",
    EventType.AGENT_STALE: "warning",
    EventType.AGENT_CONTEXT_HIGH: "warning",
    EventType.AGENT_SPIRAL: "warning",
    EventType.BUDGET_WORK_EXHAUSTED: "error",
    EventType.TASK_PARKED: "error",
    EventType.LOCK_REFUSED: "warning",
    EventType.BOUNDARY_VIOLATION: "warning",
    EventType.BOUNDARY_COMMIT_BLOCKED: "warning",
    EventType.BOUNDARY_SANDBOX_REFUSED: "warning",
    EventType.SANDBOX_UNAVAILABLE: "error",
    EventType.SANDBOX_NOT_WALLED: "warning",
    EventType.TMUX_SESSION_LOST: "error",
    EventType.TMUX_UNAVAILABLE: "warning",
    EventType.DOMAIN_MISSING: "error",
    EventType.MESSAGE_DEFERRED: "warning",
    EventType.CLUSTER_DOWN: "warning",
    EventType.CLUSTER_FAULT: "error",
    EventType.CLUSTER_UNANSWERED: "warning",
    EventType.KICKOFF_UNREGISTERED: "error",
    EventType.MERGE_CONFLICT: "warning",
    EventType.MERGE_FAILED: "warning",
    EventType.INTEGRATION_CONFLICT: "warning",
    EventType.INTEGRATION_COORDINATOR_FAILED: "error",
}
