"""The operator's keys as the room's actions: a dialog where one is needed, then the
intervention in a worker (operator/actions.py does the IO and answers in one line). The
result or the failure comes back to `ControlRoom.on_worker_state_changed` (tui/app.py), the
one place that turns a worker's end into a notice."""

from __future__ import annotations

from functools import partial

from textual.app import App

from comm_node_tui.engine.needs import NeedKind
from comm_node_tui.engine.world import World
from comm_node_tui.errors import CommNodeError
from comm_node_tui.operator.actions import OperatorActions
from comm_node_tui.tui.messages import WorldChanged
from comm_node_tui.tui.screens.dialogs import ConfirmScreen, InjectScreen, PickScreen, PromptScreen
from comm_node_tui.tui.widgets.agents import AgentsPanel
from comm_node_tui.tui.widgets.locks import LocksPanel


class Hand(App):
    """The interventions of ControlRoom (which sets `operator` and keeps `world`)."""

    operator: OperatorActions
    world: World | None

    @property
    def selected_agent(self) -> str | None:
        panels = self.query(AgentsPanel)  # none while the room closes (timers still fire)
        return panels.first().selected if panels else None

    def _prompt_shown(self, name: str) -> str | None:
        """The key of the permission prompt the room shows for `name`, which its answer must
        still be (None when the room shows none yet: the answer goes to the permission
        prompt on its screen, as it would from the pane)."""
        needs = self.world.needs if self.world is not None else ()
        return next(
            (n.key for n in needs if n.agent == name and n.kind == NeedKind.PERMISSION), None
        )

    def _act(self, what: str, fn, *args) -> None:
        """An intervention in a worker; its one-line result or its failure comes back to
        ControlRoom.on_worker_state_changed (by the worker's group, "act", and name)."""
        self.run_worker(
            partial(fn, *args), name=what, group="act", thread=True, exit_on_error=False
        )

    def _need_agent(self) -> str | None:
        name = self.selected_agent
        if name is None:
            self.notify("select an agent first (panel 1)", severity="warning")
        return name

    def action_attach(self) -> None:
        name = self._need_agent()
        if not name:
            return
        try:
            self.operator.attach(name, self.suspend)
        except CommNodeError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.post_message(WorldChanged())

    def action_inject(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def typed(text: str | None) -> None:
            if text:
                self._act(f"inject into {name}", self.operator.inject, name, text)

        self.push_screen(InjectScreen(name), typed)

    def action_interrupt(self) -> None:
        if name := self._need_agent():
            self._act(f"interrupt {name}", self.operator.interrupt, name)

    def action_approve(self) -> None:
        if name := self._need_agent():
            self.approve_agent(name, self._prompt_shown(name))

    def action_deny(self) -> None:
        if name := self._need_agent():
            self.deny_agent(name, self._prompt_shown(name))

    # By name: the "Needs you" screen acts on its item's agent, not the selected row. Both
    # answer the dialog by keys (panes/ `answer`), never by typing text, and only while the
    # prompt is the one the operator read (`seen`: its key, checked against the agent's
    # hooks after its screen is read).
    def approve_agent(self, name: str, seen: str | None = None) -> None:
        self._act(f"approve {name}", self.operator.approve, name, seen)

    def deny_agent(self, name: str, seen: str | None = None) -> None:
        self._act(f"deny {name}", self.operator.deny, name, seen)

    def answer_agent(self, name: str, reply_to: str | None) -> None:
        """A reply into the agent's inbox (the operator's question, if one, marked read)."""

        def typed(text: str | None) -> None:
            if text:
                self._act(f"answer {name}", self.operator.answer, name, text, reply_to)

        self.push_screen(InjectScreen(name), typed)

    def action_kill(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._act(f"kill {name}", self.operator.kill, name)

        self.push_screen(ConfirmScreen(f"Kill {name}'s agent and close its pane?"), confirmed)

    def action_handoff(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._act(f"hand off {name}", self.operator.handoff, name)

        self.push_screen(
            ConfirmScreen(
                f"Hand off {name}? It is asked to write its note to .comm-node/handoff.md, "
                "then its context is cleared (/clear); the note and its task are handed back "
                "to it."
            ),
            confirmed,
        )

    def action_restart(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def confirmed(answer: bool | str | None) -> None:
            if answer is True:
                self._act(f"restart {name}", self.operator.restart, name)
            elif answer == "f":
                self._act(f"restart {name} fresh", self.operator.restart, name, True)

        self.push_screen(
            ConfirmScreen(
                f"Restart {name}'s agent? What it is doing now is cut short; yes resumes "
                "its conversation, f starts a new one.",
                other=("f", "Fresh conversation"),
            ),
            confirmed,
        )

    def action_pause(self) -> None:
        """Asks which: every agent (confirmed again) or the selected one; or the resume."""
        stop = self.operator.pause_state()  # one small file, read here: the choice depends
        name = self.selected_agent
        choices: list[tuple[str, str]] = []
        if stop.all:
            choices.append(("resume-all", "Resume every agent"))
        else:
            if name and stop.covers(name):
                choices.append((f"resume:{name}", f"Resume {name}"))
            elif name:
                choices.append((f"pause:{name}", f"Pause only {name}"))
            choices.append(("pause-all", "Pause every agent (asks again)"))
            if stop.domains:
                paused = ", ".join(stop.domains)
                choices.append(("resume-all", f"Resume every paused agent ({paused})"))

        def pause_all(yes: bool | None) -> None:
            if yes:
                self._act("pause all", self.operator.pause, None)

        def picked(key: str | None) -> None:
            if key == "pause-all":
                self.push_screen(
                    ConfirmScreen(
                        "Pause every agent? Each is interrupted; tools, prompts and new claims "
                        "are refused until the resume."
                    ),
                    pause_all,
                )
            elif key == "resume-all":
                self._act("resume all", self.operator.resume, None)
            elif key and key.startswith("pause:"):
                who = key.split(":", 1)[1]
                self._act(f"pause {who}", self.operator.pause, [who])
            elif key and key.startswith("resume:"):
                who = key.split(":", 1)[1]
                self._act(f"resume {who}", self.operator.resume, [who])

        self.push_screen(PickScreen("Pause or resume", choices), picked)

    def action_grant_budget(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def granted(value: str | None) -> None:
            if value is None:
                return
            try:
                tokens = int(value.replace(",", "").replace("_", ""))
            except ValueError:
                self.notify(f"'{value}' is not a number of tokens", severity="error", markup=False)
                return
            self._act(f"grant {tokens} to {name}", self.operator.grant_budget, name, tokens)

        self.push_screen(PromptScreen(f"Tokens to grant to {name}:", "e.g. 50000"), granted)

    def action_assign_task(self) -> None:
        name = self._need_agent()
        if not name or self.world is None:
            return
        ready = self.world.tasks.ready_ids
        choices = [
            (tid, f"{'ready' if tid in ready else t.status:<12} {tid}  {t.title}")
            for tid, t in sorted(self.world.task_graph.items())
            if tid in ready or t.status == "in_progress"
        ]
        if not choices:
            self.notify("no ready or running task to assign", severity="warning")
            return

        def picked(tid: str | None) -> None:
            if tid:
                self._act(f"assign {tid} to {name}", self.operator.assign_task, tid, name)

        self.push_screen(PickScreen(f"Task for {name}:", choices), picked)

    def action_add_task(self) -> None:
        from comm_node_tui.tui.screens.task_form import TaskFormScreen

        def added(form: tuple[str | None, dict] | None) -> None:
            if form is not None:
                self._act("add task", self._add_task, *form)

        self.push_screen(TaskFormScreen(self.selected_agent), added)

    def _add_task(self, tid: str | None, fields: dict) -> str:
        """In the worker: the CLI's own `task add` (its checks, its one-line refusals)."""
        from comm_node_tui.coordination.task_edit import add_native

        entry = add_native(self.operator.coord, tid, fields)
        return f"added {entry['id']} to tasks.toml"

    def action_release_lock(self) -> None:
        panel = self.query_one(LocksPanel)
        locks = {lk.key: lk for lk in (self.world.locks if self.world else ())}

        def release(key: str | None) -> None:
            if key in locks:
                lock = locks[key]
                what = f"release {lock.pattern}"
                self._act(what, self.operator.release_lock, lock.holder, lock.pattern)

        chosen = panel.selected if panel.has_focus else None
        if chosen is not None:
            release(chosen.key)
        elif locks:
            picks = [(k, f"{lk.holder}: {lk.pattern}") for k, lk in locks.items()]
            self.push_screen(PickScreen("Release which lock?", picks), release)
        else:
            self.notify("no locks are held", severity="warning")

    def action_review(self) -> None:
        """The review screen on the selected agent's changes (tui/screens/review.py)."""
        from comm_node_tui.tui.screens.review import ReviewScreen

        if name := self._need_agent():
            self.push_screen(ReviewScreen(name, self.operator))

    def action_merge(self) -> None:
        if name := self._need_agent():
            self.merge_agent(name)

    def merge_agent(self, name: str) -> None:
        """Asks, then queues the domain's branch (the engine's merge queue takes it)."""

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._act(f"merge {name}", self.operator.queue_merge, name)

        self.push_screen(
            ConfirmScreen(
                f"Queue {name}'s branch for the merge queue? It is merged into the integration "
                "branch only if the merge, its verify commands, the boundary check and the "
                "integration tests pass; its branch is never changed."
            ),
            confirmed,
        )

    def action_publish_artifact(self) -> None:
        name = self._need_agent()
        if not name:
            return

        def publish(path: str | None) -> None:
            if path:
                self._act(f"publish {path}", self.operator.publish_artifact, name, path)

        self.push_screen(
            PromptScreen(
                f"File to publish as an artifact of {name}:", "path, relative to the domain"
            ),
            publish,
        )
