"""The task DAG: a tree by parent, status glyphs, counts, what blocks the selected task and
what it unblocks, and the longest remaining chain highlighted.

Nodes are keyed by task id: while the tree's shape (who is whose child, in which order)
stays, a new world only relabels the nodes whose label changed, so the cursor and the folds
stay where the operator left them; a task added, removed or moved rebuilds the tree."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from comm_node_tui.engine.world import TaskNode, World
from comm_node_tui.tui.text import safe
from comm_node_tui.tui.widgets.keyed_table import signature

STATUS = {
    "closed": ("✓", "green"),
    "pinned": ("⌖", "dim"),
    "in_progress": ("▶", "bold cyan"),
    "blocked": ("■", "red"),
    "parked": ("⏸", "bold red"),  # the verify gate's circuit breaker: the operator reopens it
    "deferred": ("…", "dim"),
    "hooked": ("⚓", "dim"),
}
MAX_NODES = 3000


def longest_chain(graph: Mapping[str, TaskNode]) -> list[str]:
    """The longest path of not-done tasks along dependency edges (what paces the plan)."""
    live = {t for t, v in graph.items() if v.status not in ("closed", "pinned")}
    memo: dict[str, list[str]] = {}
    visiting: set[str] = set()

    def best(tid: str) -> list[str]:
        if tid in memo:
            return memo[tid]
        if tid in visiting:  # a cycle: stop here
            return [tid]
        visiting.add(tid)
        options = [best(d) for d in graph[tid].deps if d in live]
        visiting.discard(tid)
        memo[tid] = [*max(options, key=len, default=[]), tid]
        return memo[tid]

    chain: list[str] = []
    for tid in sorted(live):
        path = best(tid)
        if len(path) > len(chain):
            chain = path
    return chain


def children_of(graph: Mapping[str, TaskNode]) -> dict[str | None, list[str]]:
    """The tree's shape: each parent's children in the order drawn (None: the top)."""
    children: dict[str | None, list[str]] = {}
    for tid, t in graph.items():
        parent = t.parent if t.parent in graph else None
        children.setdefault(parent, []).append(tid)
    for kids in children.values():
        kids.sort(key=lambda k: (graph[k].priority, k))
    return children


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
        self.graph: Mapping[str, TaskNode] = {}
        self.blocked: Mapping[str, tuple[str, ...]] = {}
        self.ready: frozenset[str] = frozenset()
        self._shape: dict[str | None, list[str]] | None = None
        self._tree_nodes: dict[str, TreeNode] = {}
        self._labels: dict[str, Text] = {}
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

    def show(self, world: World) -> None:
        c = world.tasks.counts
        counts = (
            f"ready {c.ready} · in progress {c.in_progress} · blocked {c.blocked} · done {c.done}"
        )
        if counts != self._counts:
            self._counts = counts
            self.query_one("#task-counts", Static).update(Text(counts))
        if (world.task_graph, world.blocked, world.tasks.ready_ids) == (
            self.graph,
            self.blocked,
            self.ready,
        ):
            return  # nothing to redraw
        self.graph, self.blocked = world.task_graph, world.blocked
        self.ready = world.tasks.ready_ids
        shape = children_of(self.graph)
        chain = set(longest_chain(self.graph)) if len(self.graph) <= MAX_NODES else set()
        labels = {tid: self._label(tid, tid in chain) for tid in self.graph}
        if shape != self._shape:
            self._shape = shape
            self._rebuild(shape, labels)
        else:
            for tid, label in labels.items():
                node = self._tree_nodes.get(tid)
                old = self._labels.get(tid)
                if node is not None and (old is None or signature([label]) != signature([old])):
                    node.set_label(label)
        self._labels = labels

    def _label(self, tid: str, on_chain: bool) -> Text:
        t = self.graph[tid]
        if tid in self.ready:
            glyph, style = "◇", "bold"
        elif tid in self.blocked:
            glyph, style = "■", "red"
        else:
            glyph, style = STATUS.get(t.status, ("○", ""))
        label = Text(f"{glyph} ", style=style)
        label.append(safe(tid, 40, "underline" if on_chain else ""))
        label.append(" ")
        label.append(safe(t.title, 80))
        if t.domain:
            label.append(f"  [{t.domain}]", style="dim")
        if t.assignee and t.status == "in_progress":
            label.append(f" @{t.assignee}", style="cyan")
        if on_chain:
            label.stylize("bold")
        return label

    def _rebuild(self, children: dict[str | None, list[str]], labels: dict[str, Text]) -> None:
        tree = self.tree
        tree.clear()
        self._tree_nodes = {}
        count = 0

        def add(node: TreeNode, tid: str) -> None:
            nonlocal count
            count += 1
            if count > MAX_NODES:
                return
            kids = children.get(tid, [])
            if kids:
                branch = node.add(
                    labels[tid], data=tid, expand=self.graph[tid].status not in ("closed",)
                )
                self._tree_nodes[tid] = branch
                for k in kids:
                    add(branch, k)
            else:
                self._tree_nodes[tid] = node.add_leaf(labels[tid], data=tid)

        for tid in children.get(None, []):
            add(tree.root, tid)
        if count > MAX_NODES:
            tree.root.add_leaf(Text(f"… {count - MAX_NODES} more tasks not shown", style="dim"))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        tid = event.node.data
        if not tid or tid not in self.graph:
            return
        t = self.graph[tid]
        why = self.blocked.get(tid, ())
        unblocks = sorted(k for k, v in self.graph.items() if tid in v.deps)
        text = Text()
        text.append(safe(f"{tid}: {t.title}", 120))
        text.append("\nblocked by: ", style="bold")
        text.append(safe("; ".join(why) or ("nothing: ready" if tid in self.ready else "-"), 200))
        text.append("\nunblocks: ", style="bold")
        text.append(safe(", ".join(unblocks) or "-", 200))
        self.query_one("#task-detail", Static).update(text)
