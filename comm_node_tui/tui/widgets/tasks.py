"""The task DAG: a tree by parent, status glyphs, counts, what blocks the selected task and
what it unblocks, and the longest remaining chain highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, Tree

from comm_node_tui.tui.text import safe

STATUS = {
    "closed": ("✓", "green"),
    "pinned": ("⌖", "dim"),
    "in_progress": ("▶", "bold cyan"),
    "blocked": ("■", "red"),
    "deferred": ("…", "dim"),
    "hooked": ("⚓", "dim"),
}
MAX_NODES = 3000


def longest_chain(graph: dict[str, dict]) -> list[str]:
    """The longest path of not-done tasks along dependency edges (what paces the plan)."""
    live = {t for t, v in graph.items() if v["status"] not in ("closed", "pinned")}
    memo: dict[str, list[str]] = {}
    visiting: set[str] = set()

    def best(tid: str) -> list[str]:
        if tid in memo:
            return memo[tid]
        if tid in visiting:  # a cycle: stop here
            return [tid]
        visiting.add(tid)
        options = [best(d) for d in graph[tid]["deps"] if d in live]
        visiting.discard(tid)
        memo[tid] = [*max(options, key=len, default=[]), tid]
        return memo[tid]

    chain: list[str] = []
    for tid in sorted(live):
        path = best(tid)
        if len(path) > len(chain):
            chain = path
    return chain


class TasksPanel(Vertical):
    DEFAULT_CSS = """
    TasksPanel { height: 1fr; }
    TasksPanel > #task-counts { height: 1; }
    TasksPanel > Tree { height: 1fr; }
    TasksPanel > #task-detail { height: auto; max-height: 4; color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "2 Tasks"
        self.graph: dict[str, dict] = {}
        self.blocked: dict[str, list[str]] = {}
        self.ready: set[str] = set()
        self._signature: object = None
        self._counts = ""

    def compose(self) -> ComposeResult:
        yield Static(id="task-counts")
        tree: Tree[str] = Tree("tasks", id="task-tree")
        tree.show_root = False
        yield tree
        yield Static(id="task-detail")

    @property
    def tree(self) -> Tree:
        return self.query_one("#task-tree", Tree)

    def show(self, world: dict) -> None:
        tasks = world.get("tasks", {})
        c = tasks.get("counts", {})
        counts = (
            f"ready {c.get('ready', 0)} · in progress {c.get('in_progress', 0)} · "
            f"blocked {c.get('blocked', 0)} · done {c.get('done', 0)}"
        )
        if counts != self._counts:
            self._counts = counts
            self.query_one("#task-counts", Static).update(Text(counts))
        graph = world.get("task_graph", {})
        self.blocked = world.get("blocked", {})
        self.ready = {t["id"] for t in tasks.get("ready", [])}
        signature = (
            tuple(sorted((k, v["status"], v["assignee"]) for k, v in graph.items())),
            tuple(sorted(self.ready)),
        )
        if signature == self._signature:
            return  # nothing to redraw: keep the tree's cursor and folds
        self._signature = signature
        self.graph = graph
        self._rebuild()

    def _label(self, tid: str, on_chain: bool) -> Text:
        t = self.graph[tid]
        if tid in self.ready:
            glyph, style = "◇", "bold"
        elif tid in self.blocked:
            glyph, style = "■", "red"
        else:
            glyph, style = STATUS.get(t["status"], ("○", ""))
        label = Text(f"{glyph} ", style=style)
        label.append(safe(tid, 40, "underline" if on_chain else ""))
        label.append(" ")
        label.append(safe(t["title"], 80))
        if t.get("domain"):
            label.append(f"  [{t['domain']}]", style="dim")
        if t.get("assignee") and t["status"] == "in_progress":
            label.append(f" @{t['assignee']}", style="cyan")
        if on_chain:
            label.stylize("bold")
        return label

    def _rebuild(self) -> None:
        tree = self.tree
        tree.clear()
        chain = set(longest_chain(self.graph)) if len(self.graph) <= MAX_NODES else set()
        children: dict[str | None, list[str]] = {}
        for tid, t in self.graph.items():
            parent = t.get("parent") if t.get("parent") in self.graph else None
            children.setdefault(parent, []).append(tid)
        count = 0

        def add(node, tid: str) -> None:
            nonlocal count
            count += 1
            if count > MAX_NODES:
                return
            kids = sorted(children.get(tid, []), key=lambda k: (self.graph[k]["priority"], k))
            if kids:
                branch = node.add(
                    self._label(tid, tid in chain),
                    data=tid,
                    expand=self.graph[tid]["status"] not in ("closed",),
                )
                for k in kids:
                    add(branch, k)
            else:
                node.add_leaf(self._label(tid, tid in chain), data=tid)

        for tid in sorted(children.get(None, []), key=lambda k: (self.graph[k]["priority"], k)):
            add(tree.root, tid)
        if count > MAX_NODES:
            tree.root.add_leaf(Text(f"… {count - MAX_NODES} more tasks not shown", style="dim"))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        tid = event.node.data
        if not tid or tid not in self.graph:
            return
        t = self.graph[tid]
        why = self.blocked.get(tid, [])
        unblocks = sorted(k for k, v in self.graph.items() if tid in v["deps"])
        text = Text()
        text.append(safe(f"{tid}: {t['title']}", 120))
        text.append("\nblocked by: ", style="bold")
        text.append(safe("; ".join(why) or ("nothing: ready" if tid in self.ready else "-"), 200))
        text.append("\nunblocks: ", style="bold")
        text.append(safe(", ".join(unblocks) or "-", 200))
        self.query_one("#task-detail", Static).update(text)
