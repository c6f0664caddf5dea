"""The demo's project: five domains of the design discussion and a plan of 25 tasks with
dependencies and required artifacts, written as a Beads export (JSON lines, `blocks`
dependencies, `domain:` labels, `required_artifacts` in the metadata)."""

from __future__ import annotations

import json
import os
import random
import sys

DOMAINS = (
    # name, path, role, scope
    ("backend", "backend", "Implements the auth API and publishes its contract", ["**"]),
    ("frontend", "frontend", "Builds the login and sign-up screens", ["**"]),
    ("admin", "admin", "Builds the admin console on the admin API", ["**"]),
    ("docs", "site", "Writes the user and API documentation", ["src/D*/**", "shared/**"]),
    (
        "website",
        "site",
        "Builds the marketing website and the docs portal",
        ["src/W*/**", "shared/**"],
    ),
)

# id, domain, title, depends on, required artifacts, produces, touches (shared files)
TASKS = (
    ("B1", "backend", "Design the auth API contract", [], [], ["api-contract.yaml"], []),
    ("B2", "backend", "User model and migrations", ["B1"], [], [], []),
    ("B3", "backend", "Login endpoint", ["B2"], [], [], []),
    ("B4", "backend", "Sign-up endpoint", ["B2"], [], [], []),
    ("B5", "backend", "Admin API", ["B3"], [], ["admin-api.yaml"], []),
    ("B6", "backend", "Rate limiting", ["B3", "B4"], [], [], []),
    ("F1", "frontend", "Login form", [], ["backend:api-contract.yaml"], [], []),
    ("F2", "frontend", "Sign-up form", ["F1"], [], [], []),
    ("F3", "frontend", "Session handling", ["F1", "B3"], [], [], []),
    ("F4", "frontend", "Error states", ["F2"], [], [], []),
    ("F5", "frontend", "Screenshots for the docs", ["F2", "F3"], [], ["screenshots.md"], []),
    ("A1", "admin", "Admin shell", [], [], [], []),
    ("A2", "admin", "User list", ["A1"], ["backend:admin-api.yaml"], [], []),
    ("A3", "admin", "Ban and unban users", ["A2"], [], [], []),
    ("A4", "admin", "Audit log view", ["A2"], [], [], []),
    ("D1", "docs", "API reference", [], ["backend:api-contract.yaml"], [], ["shared/nav.yml"]),
    (
        "D2",
        "docs",
        "User guide",
        ["D1"],
        ["frontend:screenshots.md"],
        ["user-guide.md"],
        ["shared/nav.yml"],
    ),
    ("D3", "docs", "Admin guide", ["A3"], [], [], []),
    ("D4", "docs", "Changelog", ["B6"], [], [], ["shared/nav.yml"]),
    ("D5", "docs", "FAQ", ["D2"], [], [], ["shared/nav.yml"]),
    ("W1", "website", "Landing page", [], [], [], ["shared/nav.yml"]),
    ("W2", "website", "Pricing page", ["W1"], [], [], ["shared/nav.yml"]),
    ("W3", "website", "Docs portal", ["W1"], ["docs:user-guide.md"], [], ["shared/nav.yml"]),
    ("W4", "website", "Launch blog post", ["W3", "D4"], [], [], []),
    ("W5", "website", "SEO and sitemap", ["W2"], [], [], ["shared/nav.yml"]),
)
STALL_CANDIDATES = ("A1", "W1", "F2", "D1")
CRASH_CANDIDATES = ("F4", "A3", "W2", "B4")


def beads_lines() -> list[str]:
    out = []
    for i, (tid, dom, title, deps, requires, produces, touches) in enumerate(TASKS):
        desc = [f"{title} ({dom})."]
        if produces:
            desc.append(f"produces: {', '.join(produces)}")
        if touches:
            desc.append(f"touches: {', '.join(touches)}")
        rec = {
            "id": tid,
            "title": title,
            "description": "\n".join(desc),
            "status": "open",
            "priority": 1 if dom == "backend" else 2,
            "issue_type": "task",
            "labels": [f"domain:{dom}"],
            "created_at": f"2026-11-21T09:{i:02d}:00Z",
            "dependencies": [
                {
                    "issue_id": tid,
                    "depends_on_id": d,
                    "type": "blocks",
                    "created_at": f"2026-11-21T09:{i:02d}:00Z",
                    "metadata": "{}",
                }
                for d in deps
            ],
        }
        if requires:
            rec["metadata"] = {"required_artifacts": requires}
        out.append(json.dumps(rec))
    return out


def plan_toml(speed: float, seed: int, socket: str) -> str:
    stale = max(2.0, round(8.0 / speed, 1))
    command = f"{sys.executable} -m comm_node_tui.demo.sim_agent --speed {speed:g} --seed {seed}"
    parts = [
        '[project]\nname = "demo-shop"\n',
        "[agents]",
        f"command = {json.dumps(command)}",
        "budget_tokens = 6000",
        f"heartbeat_stale_s = {stale}",
        f"heartbeat_lost_s = {stale * 6}",
        # the staged stall shows a busy screen that does not move: stuck after this long
        f"stuck_after_s = {stale}",
        "work_budget_tokens = 5000000\n",
        "[tmux]",
        f'socket = "{socket}"',
        'session = "cn-demo"\n',
        '[tasks]\nsource = "beads"\npath = ".beads/issues.jsonl"\n',
    ]
    for name, path, role, scope in DOMAINS:
        parts.append(
            f'[[domains]]\nname = "{name}"\npath = "{path}"\nrole = "{role}"\n'
            f"scope = {json.dumps(scope)}\n"
        )
    return "\n".join(parts)


def demo_settings(speed: float, seed: int, stalls: int, crashes: int) -> dict:
    rng = random.Random(seed)
    stale = max(2.0, round(8.0 / speed, 1))
    return {
        "speed": speed,
        "seed": seed,
        "stall": rng.sample(STALL_CANDIDATES, min(stalls, len(STALL_CANDIDATES))),
        "crash": rng.sample(CRASH_CANDIDATES, min(crashes, len(CRASH_CANDIDATES))),
        "stall_s": stale * 2.5,  # past "stuck_after_s": detected, then recovered
        "heartbeat_stale_s": stale,
        "permission_rate": 0.12,
        "permission_wait_s": 4,
        "domains": [d[0] for d in DOMAINS],
    }


def domain_of(tid: str) -> str:
    return next(t[1] for t in TASKS if t[0] == tid)


def write_files(root: str) -> None:
    """The project's directories, a README per domain, and the Beads export."""
    for _name, path, role, _scope in DOMAINS:
        d = os.path.join(root, path)
        os.makedirs(d, exist_ok=True)
        readme = os.path.join(d, "README.md")
        if not os.path.exists(readme):
            with open(readme, "w", encoding="utf-8") as fh:
                fh.write(f"# {path}\n\n{role}.\n")
    os.makedirs(os.path.join(root, ".beads"), exist_ok=True)
    with open(os.path.join(root, ".beads", "issues.jsonl"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(beads_lines()) + "\n")
