"""The command palette: every action of the table, by name (and, while the "Needs you"
screen is open, that screen's actions too; while the review is open, the review's alone)."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

from comm_node_tui.tui.actions import ACTIONS, NEEDS_ACTIONS, REVIEW_ACTIONS, Action


class ActionsProvider(Provider):
    def _actions(self) -> list[tuple[Action, str]]:
        """(action, what to run): a screen's own actions run on it (`screen.` namespace)."""
        from comm_node_tui.tui.screens.needs import NeedsScreen
        from comm_node_tui.tui.screens.review import ReviewScreen

        out = [(a, a.action) for a in ACTIONS]
        if isinstance(self.screen, NeedsScreen):
            out = [(a, f"screen.{a.action}") for a in NEEDS_ACTIONS] + out
        elif isinstance(self.screen, ReviewScreen):
            # its own actions only: the room's act on the room's selection, which it hides
            out = [(a, f"screen.{a.action}") for a in REVIEW_ACTIONS]
        return out

    async def discover(self) -> Hits:
        for a, run in self._actions():
            yield DiscoveryHit(a.description, self._runner(run), help=a.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for a, run in self._actions():
            score = matcher.match(f"{a.description} {a.help}")
            if score > 0:
                yield Hit(score, matcher.highlight(a.description), self._runner(run), help=a.help)

    def _runner(self, action: str):
        async def run() -> None:
            await self.app.run_action(action)

        return run
