"""The real demo's project and the script the scripted model plays for it.

Four domains, one task each, so real Claude Code agents finish in a few minutes: the backend
publishes the auth API contract, which the frontend's and the docs' tasks require (they wait
for it: `comm-node task ready` lists nothing for them until it is published); the website's
task is ready at once. Every agent does its task the same way, with real tool calls that
Claude Code runs and comm-node's hooks see: claim the task, lock the file, write it (Claude
Code asks permission: the demo's operator stand-in approves with the permission keys),
publish it as an artifact where a peer needs it, tell a peer, release the lock, close the
task.

The script is generated from the plan (so they never disagree): one rule answers every
prompt (the kickoff's first prompt, the engine's "You have N new messages" nudges, the
operator's words after a restart) by reading the inbox and asking `comm-node task ready`; what
that command prints picks the next rule: a ready task's id starts its work, "nothing is
ready" ends the turn. The backend's first answer is a stall: nothing for `stall_s` (the
spinner runs, no hook fires), which the watchdog flags as stuck and then sees recover. It is
the turn's first answer, not one after a tool call, because Claude Code 2.1.330 blinks the
bullet of a finished tool call (`●`) while it waits for the next answer, and that blinking
counts as progress on the screen: a silence after a tool call is never "stuck".
"""

from __future__ import annotations

import json
import os

# name, path, role
DOMAINS = (
    ("backend", "backend", "Implements the auth API and publishes its contract"),
    ("frontend", "frontend", "Builds the login screen on the auth API"),
    ("docs", "docs", "Writes the API reference"),
    ("website", "website", "Builds the marketing website"),
)

# id, domain, title, required artifacts, file written (relative to the domain), content,
# published as an artifact, who is told, what they are told
TASKS = (
    (
        "B1",
        "backend",
        "Design the auth API contract",
        [],
        "src/api-contract.yaml",
        "openapi: 3.1.0\ninfo:\n  title: auth\n  version: 1.0.0\npaths:\n  /login:\n"
        "    post:\n      summary: Log a user in\n  /signup:\n    post:\n"
        "      summary: Create an account\n",
        True,
        "frontend,docs",
        "The auth API contract is published (api-contract.yaml): /login and /signup.",
    ),
    (
        "W1",
        "website",
        "Landing page",
        [],
        "src/index.html",
        "<!doctype html>\n<title>demo-shop</title>\n<h1>demo-shop</h1>\n"
        '<p>Sign up in seconds. <a href="/docs/">Read the docs</a>.</p>\n',
        False,
        "docs",
        "The landing page links to /docs/: please keep the API reference there.",
    ),
    (
        "F1",
        "frontend",
        "Login form",
        ["backend:api-contract.yaml"],
        "src/login.tsx",
        "export function Login() {\n  return <form method='post' action='/login'>"
        "<input name='email' /><input name='password' type='password' />"
        "<button>Log in</button></form>;\n}\n",
        False,
        "backend",
        "The login form posts to /login as the contract says; thanks.",
    ),
    (
        "D1",
        "docs",
        "API reference",
        ["backend:api-contract.yaml"],
        "src/api-reference.md",
        "# API reference\n\n## POST /login\n\nLog a user in.\n\n## POST /signup\n\n"
        "Create an account.\n",
        True,
        "website",
        "The API reference is published (api-reference.md), ready for /docs/.",
    ),
)
STALL_TASK = "B1"  # whose work stalls (a silent reply the watchdog flags)
RESTART_DOMAIN = "website"  # restarted by the operator stand-in once its task is done


def beads_lines() -> list[str]:
    out = []
    for i, (tid, dom, title, requires, path, *_rest) in enumerate(TASKS):
        rec = {
            "id": tid,
            "title": title,
            "description": f"{title} ({dom}).\nwrites: {path}",
            "status": "open",
            "priority": 1 if dom == "backend" else 2,
            "issue_type": "task",
            "labels": [f"domain:{dom}"],
            "created_at": f"2026-11-21T09:{i:02d}:00Z",
            "dependencies": [],
        }
        if requires:
            rec["metadata"] = {"required_artifacts": requires}
        out.append(json.dumps(rec))
    return out


def plan_toml(command: str, socket: str, stuck_after_s: float) -> str:
    parts = [
        '[project]\nname = "demo-shop"\n',
        "[agents]",
        f"command = {json.dumps(command)}",
        # real requests carry Claude Code's ~12,000-token system prompt and tools: budgets
        # that do not stop a demo of a few dozen requests
        "budget_tokens = 50000000",
        "work_budget_tokens = 50000000",
        "heartbeat_stale_s = 30",
        "heartbeat_lost_s = 60",
        # the staged stall is a silent reply: stuck after this long
        f"stuck_after_s = {stuck_after_s:g}\n",
        "[tmux]",
        f'socket = "{socket}"',
        'session = "cn-demo"\n',
        '[tasks]\nsource = "beads"\npath = ".beads/issues.jsonl"\n',
    ]
    for name, path, role in DOMAINS:
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{path}"\nrole = "{role}"\nscope = ["**"]\n'
        )
    return "\n".join(parts)


def write_files(root: str) -> None:
    """The domains' directories, a README each, and the Beads export."""
    for _name, path, role in DOMAINS:
        d = os.path.join(root, path)
        os.makedirs(os.path.join(d, "src"), exist_ok=True)
        readme = os.path.join(d, "README.md")
        if not os.path.exists(readme):
            with open(readme, "w", encoding="utf-8") as fh:
                fh.write(f"# {path}\n\n{role}.\n")
    os.makedirs(os.path.join(root, ".beads"), exist_ok=True)
    with open(os.path.join(root, ".beads", "issues.jsonl"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(beads_lines()) + "\n")


# ---- the script -----------------------------------------------------------------------------
def _s(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def _bash(command: str, description: str) -> str:
    args = f"command = {_s(command)}, description = {_s(description)}"
    return f'{{tool = "Bash", input = {{{args}}}}}'


def _text(text: str) -> str:
    return f"{{text = {_s(text)}}}"


def script_toml(root: str, stall_s: float) -> str:
    """The model's script for the plan (docs/model.md has the format)."""
    paths = {name: os.path.join(root, path) for name, path, _role in DOMAINS}
    start = (
        "reply = ["
        + _text("I will read my mail, then see which task is ready for me.")
        + ", "
        + _bash("comm-node inbox", "Read my inbox")
        + "]"
    )
    then = "then = [[" + _bash("comm-node task ready", "Which task is ready for me") + "]]"
    stalled = domain_of(STALL_TASK)
    out = [
        f"description = {_s('comm-node demo: real Claude Code agents play the demo plan')}",
        # the CN_* directives stay on: an operator can still type them into a pane
        "directives = true",
        "",
        f"# The stall: {stalled}'s first answer keeps silent for {stall_s:g} s (the spinner",
        "# runs, no hook fires), then it starts its work as every agent does.",
        "[[rules]]",
        'name = "stall"',
        'on = "prompt"',
        f"match = {_s(f'you are the {stalled} agent of')}",
        "times = 1",
        start,
        f"stream = {{wait = {stall_s:g}}}",
        then,
        "",
        "# Every prompt (kickoff, mail nudge, the operator after a restart): mail, then tasks.",
        "[[rules]]",
        'name = "work"',
        'on = "prompt"',
        start,
        then,
        "",
    ]
    for tid, dom, title, _requires, rel, content, publish, to, message in TASKS:
        path = os.path.join(paths[dom], rel)
        write = "{tool = " + _s("Write") + f", input = {{file_path = {_s(path)}, "
        write += f"content = {_s(content)}}}}}"
        write_step = "[" + _text(f"Writing {rel}.") + ", " + write + "]"
        out += [
            f"# {tid} ({dom}): {title}",
            "[[rules]]",
            f'name = "{tid}"',
            'on = "tool_result"',
            'tool = "Bash"',
            f"match = {_s(f'(?m)^{tid} ')}",
            "reply = ["
            + _text(f"{tid} is ready: I claim it.")
            + ", "
            + _bash(f"comm-node task claim {tid}", f"Claim {tid}")
            + "]",
            "then = [",
            "  ["
            + _bash(
                f"comm-node lock acquire {rel} --reason {json.dumps(tid + ': ' + title)}",
                f"Lock {rel}",
            )
            + "],",
            "  " + write_step + ",",
            *(
                ["  [" + _bash(f"comm-node artifact publish {rel}", f"Publish {rel}") + "],"]
                if publish
                else []
            ),
            "  ["
            + _bash(
                f"comm-node send --to {to} --task {tid} {json.dumps(message)}",
                f"Tell {to}",
            )
            + "],",
            "  [" + _bash(f"comm-node lock release {rel}", f"Release {rel}") + "],",
            # closed last: the plan is done only once its last message is sent
            "  [" + _bash(f"comm-node task done {tid}", f"Close {tid}") + "],",
            "  [" + _text(f"{tid} ({title}) is done; I told {to}.") + "],",
            "]",
            "",
        ]
    out += [
        "# Nothing ready: wait for a peer's message (the engine nudges).",
        "[[rules]]",
        'name = "wait"',
        'on = "tool_result"',
        'tool = "Bash"',
        "match = 'nothing is ready'",
        "reply = ["
        + _text("Nothing is ready for me yet; I will wait for my peers' messages.")
        + "]",
        "",
    ]
    return "\n".join(out)


def domain_of(tid: str) -> str:
    return next(t[1] for t in TASKS if t[0] == tid)
