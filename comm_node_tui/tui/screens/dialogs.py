"""Small modal dialogs: inject editor, confirm, prompt, pick from a list, read a message."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from comm_node_tui.tui.text import block, safe

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 80; height: auto; max-height: 90%; border: thick $primary;
    background: $surface; padding: 1 2; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Button {{ margin-left: 1; }}
"""


class InjectScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="inject-send", tooltip="Send the text"),
        Binding("escape", "cancel", "Cancel", id="inject-cancel", tooltip="Cancel"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="InjectScreen") + "InjectScreen TextArea { height: 10; }"

    def __init__(self, domain: str) -> None:
        super().__init__()
        self.domain = domain

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Message to {self.domain} (ctrl+s sends, esc cancels)"))
            yield TextArea(id="inject-text")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Send", variant="primary", id="send")

    def action_send(self) -> None:
        text = self.query_one(TextArea).text
        self.dismiss(text if text.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_send() if event.button.id == "send" else self.action_cancel()


class ConfirmScreen(ModalScreen[bool | str]):
    """Yes (True) or no (False); with `other` = (key, label), a second way to say yes that
    answers with `key` (the restart's "fresh conversation")."""

    BINDINGS = [
        Binding("y", "yes", "Yes", id="confirm-yes", tooltip="Yes"),
        Binding("n,escape", "no", "No", id="confirm-no", tooltip="No"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmScreen")

    def __init__(self, question: str, other: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.question = question
        self.other = other

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(safe(self.question, 200))
            with Horizontal():
                yield Button("No", id="no")
                if self.other:
                    key, label = self.other
                    yield Button(f"{label} ({key})", variant="warning", id="other")
                yield Button("Yes", variant="error", id="yes")

    def on_key(self, event: events.Key) -> None:
        if self.other and event.key == self.other[0]:
            event.stop()
            self.dismiss(self.other[0])

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "other" and self.other:
            self.dismiss(self.other[0])
        else:
            self.dismiss(event.button.id == "yes")


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt-cancel", tooltip="Cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="PromptScreen")

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(safe(self.question, 200))
            yield Input(placeholder=self.placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick-cancel", tooltip="Cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="PickScreen") + "PickScreen OptionList { height: 16; }"

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(safe(self.title_text, 200))
            yield OptionList(*[Option(safe(label, 100), id=key) for key, label in self.choices])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MessageScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="message-close", tooltip="Close")]
    DEFAULT_CSS = """
    MessageScreen { align: center middle; }
    MessageScreen > VerticalScroll { width: 90%; height: 80%; border: thick $primary;
        background: $surface; padding: 1 2; }
    """

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label(safe(self.title_text, 200, "bold"))
            yield Static(block(self.text, max_lines=2000, width=500))
