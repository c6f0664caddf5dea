"""The task DAG: a tree by parent, status glyphs, counts, what blocks the selected task and
what it unblocks, and the longest remaining chain highlighted.

Nodes are keyed by task id: while the tree's shape (who is whose child, in which order)
stays, a new world only relabels the nodes whose label changed, so the cursor and the folds
stay where the operator left them; a task added, removed or moved rebuilds the tree."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
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
    """The longest path of not-done tasks along dependency edges (what paces the plan).

    Walked with a stack of its own, not by recursion: a plan whose chain of dependencies is
    longer than Python's recursion limit (a thousand tasks in a row) made the panel raise
    RecursionError and stay empty. Each task keeps its length and the dependency it
    continues, not its whole path (paths of thousands of ids each grew as the square)."""
    live = {t for t, v in graph.items() if v.status not in ("closed", "pinned")}
    # tid -> (length, the dependency it continues, that dependency closes a cycle: stop)
    best: dict[str, tuple[int, str | None, bool]] = {}
    visiting: set[str] = set()

    def solve(root: str) -> None:
        visiting.add(root)
        # a frame: [tid, its dependencies left, best length, best next, cut, the one waited on]
        stack: list[list] = [[root, iter(graph[root].deps), 0, None, False, None]]
        while stack:
            frame = stack[-1]
            waited = frame[5]
            if waited is not None:  # the dependency solved since this frame was left
                frame[5] = None
                if best[waited][0] > frame[2]:
                    frame[2], frame[3], frame[4] = best[waited][0], waited, False
            for d in frame[1]:
                if d not in live:
                    continue
                if d in best:
                    length, cut = best[d][0], False
                elif d in visiting:  # a cycle: the chain stops at d
                    length, cut = 1, True
                else:
                    frame[5] = d
                    visiting.add(d)
                    stack.append([d, iter(graph[d].deps), 0, None, False, None])
                    break
                if length > frame[2]:
                    frame[2], frame[3], frame[4] = length, d, cut
            else:
                stack.pop()
                visiting.discard(frame[0])
                best[frame[0]] = (frame[2] + 1, frame[3], frame[4])

    def path(tid: str) -> list[str]:
        out: list[str] = []
        step: str | None = tid
        while step is not None:
            out.append(step)
            _length, step, cut = best[step]
            if cut and step is not None:
                out.append(step)
                break
        return out[::-1]

    top, top_len = None, 0
    for tid in sorted(live):
        if tid not in best:
            solve(tid)
        if best[tid][0] > top_len:
            top, top_len = tid, best[tid][0]
    return [] if top is None else path(top)


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

    def get_loading_widget(self) -> Widget:
        """A still line while the tasks load, not Textual's animated indicator: it redrew
        16 times a second for the seconds the engine's start takes (20,000 tasks), and at
        200 agents each of those frames painted the whole room (47 frames before the first
        full one, ~0.2-0.3 s of the UI thread's CPU taken from the start it waits for)."""
        return Static(Text("loading the tasks…", style="dim"), classes="tasks-loading")

    def show(self, world: World) -> None:
        c = world.tasks.counts
        counts = (
            f"ready {c.ready} · in progress {c.in_progress} · blocked {c.blocked} · done {c.done}"
        )
        if counts != self._counts:
            self._counts = counts
            self.query_one("#task-counts", Static).update(Text(counts))
        same = (world.task_graph, world.blocked, world.tasks.ready_ids) == (
            self.graph,
            self.blocked,
            self.ready,
        )
        # Kept even when equal: the next world then compares by identity. An equal graph
        # built apart (a read from the files while the engine started) was compared node by
        # node against every later world: 20,000 nodes, a quarter of a 200-agent room's idle.
        self.graph, self.blocked = world.task_graph, world.blocked
        self.ready = world.tasks.ready_ids
        if same:
            return  # nothing to redraw
        shape = children_of(self.graph)
        chain = set(longest_chain(self.graph)) if len(self.graph) <= MAX_NODES else set()

        # Labels only for the nodes in the tree (at most MAX_NODES): at 20,000 tasks, making
        # a Text for every task was most of the room's first frame.
        def label(tid: str) -> Text:
            return self._label(tid, tid in chain)

        if shape != self._shape:
            self._shape = shape
            self._labels = {}
            self._rebuild(shape, label)
        else:
            for tid, node in self._tree_nodes.items():
                new, old = label(tid), self._labels.get(tid)
                if old is None or signature([new]) != signature([old]):
                    node.set_label(new)
                self._labels[tid] = new

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

    def _rebuild(self, children: dict[str | None, list[str]], label: Callable[[str], Text]) -> None:
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
            text = self._labels[tid] = label(tid)
            if kids:
                branch = node.add(text, data=tid, expand=self.graph[tid].status not in ("closed",))
                self._tree_nodes[tid] = branch
                for k in kids:
                    add(branch, k)
            else:
                self._tree_nodes[tid] = node.add_leaf(text, data=tid)

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
