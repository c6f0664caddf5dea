"""The operator's actions: one table feeds the key bindings, the Footer, the help screen and
the command palette, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    id: str
    keys: str
    action: str
    description: str
    help: str
    footer: bool = True


ACTIONS: tuple[Action, ...] = (
    Action(
        "attach",
        "enter",
        "attach",
        "Attach",
        "Go to the selected agent's tmux pane (the control room comes back when you detach)",
    ),
    Action(
        "inject",
        "i",
        "inject",
        "Inject",
        "Type a message into the agent's pane and its inbox (multi-line editor)",
    ),
    Action("interrupt", "e", "interrupt", "Interrupt", "Send Escape to the selected agent"),
    Action(
        "approve",
        "y",
        "approve",
        "Approve",
        "Allow once the tool the selected agent's permission prompt asks for",
    ),
    Action(
        "deny",
        "n",
        "deny",
        "Deny",
        "Refuse the tool the selected agent's permission prompt asks for",
        footer=False,
    ),
    Action("kill", "x", "kill", "Kill", "Kill the agent's process tree and pane (asks first)"),
    Action(
        "restart",
        "r",
        "restart",
        "Restart",
        "Restart the selected agent in its conversation (asks first; f: fresh)",
    ),
    Action(
        "pause",
        "p",
        "pause",
        "Pause",
        "Stop the selected agent or all (asks): interrupted; tools, prompts, claims refused",
    ),
    Action(
        "handoff",
        "h",
        "handoff",
        "Hand off",
        "Ask the agent to write its hand-off note, then clear its context (asks first)",
        footer=False,
    ),
    Action(
        "budget", "b", "grant_budget", "Budget", "Grant communication budget to the selected agent"
    ),
    Action("task", "t", "assign_task", "Task", "Assign or reassign a task to the selected agent"),
    Action(
        "task-add",
        "plus",
        "add_task",
        "New task",
        "Add a native task to tasks.toml (a small form; `comm-node task add` in the CLI)",
        footer=False,
    ),
    Action("lock", "l", "release_lock", "Unlock", "Release a lock", footer=False),
    Action(
        "artifact",
        "a",
        "publish_artifact",
        "Artifact",
        "Publish a file as an artifact of the selected domain",
        footer=False,
    ),
    Action(
        "boundaries",
        "v",
        "show_boundaries",
        "Bounds",
        "Boundary violations: changes outside scopes, imports that break the rules",
        footer=False,
    ),
    Action(
        "review",
        "d",
        "review",
        "Review",
        "Review the selected agent's changes: the files, the diff, comments sent to the agent",
        footer=False,
    ),
    Action(
        "merge",
        "m",
        "merge",
        "Merge",
        "Queue the selected domain's branch for the merge queue (asks first)",
        footer=False,
    ),
    Action(
        "needs",
        "w",
        "needs",
        "Needs you",
        "What waits on you (prompts, questions, lost agents, spent budgets, failed tasks) "
        "and the alert history",
        footer=False,  # the header's badge names the key; the footer is short of room
    ),
    Action("filter", "slash", "filter_events", "Filter", "Filter the events panel"),
    Action(
        "open", "o", "open_event", "Open", "Read the selected event's message in full", footer=False
    ),
    Action("help", "question_mark,f1", "help", "Help", "Keys and what they do"),
    Action("quit", "q", "quit", "Quit", "Leave the control room (agents keep running)"),
)

# The keys of the "Needs you" screen (tui/screens/needs.py): its bindings, its part of the
# help and, while it is open, its commands in the palette.
NEEDS_ACTIONS: tuple[Action, ...] = (
    Action("needs-jump", "g", "jump", "Go to", "Select the item's agent in the room"),
    Action("needs-attach", "enter", "attach", "Attach", "Go to the item's agent's tmux pane"),
    Action(
        "needs-approve", "y", "approve", "Approve", "Allow once what the permission prompt asks"
    ),
    Action("needs-deny", "n", "deny", "Deny", "Refuse what the permission prompt asks"),
    Action(
        "needs-answer",
        "r",
        "answer",
        "Answer",
        "Reply to the agent (a message to its inbox; its question is marked read)",
    ),
    Action("needs-dismiss", "d", "dismiss_item", "Dismiss", "Hide the item until it changes"),
    Action("needs-alerts", "tab", "switch_tab", "Alerts", "Switch between the items and alerts"),
    Action("needs-clear", "c", "clear_alerts", "Clear", "Clear the alert history and the marks"),
    Action("needs-close", "escape,w", "close", "Close", "Back to the room"),
)

# The keys of the review screen (tui/screens/review.py), as NEEDS_ACTIONS are the needs screen's.
REVIEW_ACTIONS: tuple[Action, ...] = (
    Action("review-next-file", "j,down", "next_file", "Next file", "The next changed file"),
    Action("review-prev-file", "k,up", "prev_file", "Prev file", "The previous changed file"),
    Action("review-next-hunk", "n", "next_hunk", "Next hunk", "The cursor to the next hunk"),
    Action("review-prev-hunk", "p", "prev_hunk", "Prev hunk", "The cursor to the hunk before"),
    Action("review-line-down", "J", "line_down", "Line down", "The cursor one line down"),
    Action("review-line-up", "K", "line_up", "Line up", "The cursor one line up"),
    Action("review-page-down", "pagedown", "page_down", "Page down", "Scroll the diff"),
    Action("review-page-up", "pageup", "page_up", "Page up", "Scroll the diff back"),
    Action(
        "review-comment",
        "c",
        "comment",
        "Comment",
        "A comment on the cursor's line, sent to the agent (names the file, line and hunk)",
    ),
    Action("review-merge", "m", "merge", "Merge", "Queue this domain's branch for merging"),
    Action("review-close", "escape,q", "close", "Close", "Back to the room"),
    # The room's own keys stop at this screen (they would act on the room's selection,
    # hidden under it): its help and its quit are the screen's own, here.
    Action("review-help", "question_mark,f1", "help", "Help", "Keys and what they do"),
    Action(
        "review-quit",
        "ctrl+q",
        "quit",
        "Quit",
        "Leave the control room (agents keep running); q here closes the review",
    ),
)

PANEL_KEYS = ("agents", "tasks", "locks", "burn", "events", "preview")


def bindings() -> list[Binding]:
    out = [
        Binding(a.keys, a.action, a.description, show=a.footer, tooltip=a.help, id=a.id)
        for a in ACTIONS
    ]
    for i, panel in enumerate(PANEL_KEYS, 1):
        out.append(
            Binding(
                str(i),
                f"focus_panel('{panel}')",
                f"Panel {i}",
                show=False,
                tooltip=f"Focus the {panel} panel",
                id=f"panel-{panel}",
            )
        )
    out.append(
        Binding(
            "tab",
            "cycle_panel",
            "Next panel",
            show=False,
            tooltip="Focus the next panel",
            id="cycle",
        )
    )
    return out


def screen_bindings(actions: tuple[Action, ...]) -> list[Binding]:
    """A screen's bindings from its part of the table (ids: rebindable in [keymap])."""
    return [
        Binding(a.keys, a.action, a.description, show=a.footer, tooltip=a.help, id=a.id)
        for a in actions
    ]


def keymap(wanted: dict, known: set[str]) -> tuple[dict[str, str], str | None]:
    """The `[keymap]` of comm-node.toml: the rebindings of known binding ids, and a line
    naming the ids that do not exist (None when all do)."""
    unknown = sorted(set(wanted) - known)
    problem = f"[keymap] {', '.join(unknown)}: no such binding id (see the help)"
    return {k: v for k, v in wanted.items() if k in known}, problem if unknown else None
