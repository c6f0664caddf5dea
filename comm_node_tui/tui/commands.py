"""The command palette: every action of the table, by name."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

from comm_node_tui.tui.actions import ACTIONS


class ActionsProvider(Provider):
    async def discover(self) -> Hits:
        for a in ACTIONS:
            yield DiscoveryHit(a.description, self._runner(a.action), help=a.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for a in ACTIONS:
            score = matcher.match(f"{a.description} {a.help}")
            if score > 0:
                yield Hit(
                    score, matcher.highlight(a.description), self._runner(a.action), help=a.help
                )

    def _runner(self, action: str):
        async def run() -> None:
            await self.app.run_action(action)

        return run
