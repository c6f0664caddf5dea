"""Keys for a room under the Pilot, as a terminal sends them, without Pilot.press()'s wait.

Pilot.press() waits, before and after each key, for the whole process to go idle (its CPU
time still over 20 ms), and a room runs its engine in the same process: a tenth of a second
a key, up to a second each on a loaded machine, for nothing a test asserts. Here a key is
posted to the app (what a terminal's driver does); its effect is then awaited by the test
(tests/waiting.py `until`), as it is after Pilot.press() too. Not for a key after which a
test asserts that nothing happened: see `press`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key


def key_event(key: str) -> events.Key:
    """The event Pilot.press() makes of `key` ("a", "enter", "ctrl+s", "/", ...)."""
    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        char: str | None = unicodedata.lookup(
            _get_unicode_name_from_key(REPLACED_KEYS.get(key, key))
        )
    except KeyError:
        char = key if len(key) == 1 else None
    return events.Key(key, char)


async def press(pilot: Any, *keys: str) -> None:
    """Each key in turn, posted once the app has handled what was queued before it. What a
    key does is for the test to await: a binding of the App itself runs only once the key
    has come back up from the focused widget, after this returns. A test that asserts that
    NOTHING followed a key uses Pilot.press(), which waits for the process to go idle."""
    for key in keys:
        pilot.app.post_message(key_event(key))
        # every widget has handled what was queued when it was called (the app: this key);
        # no wait for the process to go idle
        await pilot.pause(0)


async def screen_up(pilot: Any, name: str) -> None:
    """Until the app shows a screen of class `name`, composed and focused (its AUTO_FOCUS
    done): a key sent when it is merely pushed can reach none of its widgets."""
    from tests.waiting import until

    app = pilot.app
    await until(
        pilot,
        lambda: type(app.screen).__name__ == name and app.screen.focused is not None,
        what=f"{name} up, with its focus",
        show=lambda: (type(app.screen).__name__, app.screen.focused),
    )
