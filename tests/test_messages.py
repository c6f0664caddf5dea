"""The message file format: comm-node writes JSON-valued front matter any YAML reader
understands, and reads hand-written YAML front matter too."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from comm_node_tui.protocol.messages import (
    MessageFormatError,
    estimate_tokens,
    is_valid_id,
    new_message_id,
    now_iso,
    render,
    split,
)

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(subject=texts, task=texts, body=texts, to=st.lists(texts, max_size=4))
def test_round_trip_and_yaml_agree(subject, task, body, to):
    meta = {
        "id": "m-1",
        "from": "a",
        "to": to,
        "type": "info",
        "task": task,
        "subject": subject,
        "token_budget": 5,
        "reply_to": None,
    }
    text = render(meta, body)
    got, got_body = split(text)
    assert got == meta
    expected_body = body if body.endswith("\n") else body + "\n"
    assert got_body == expected_body.replace("\r\n", "\n")
    head = text.split("\n---\n", 1)[0][4:]
    assert yaml.safe_load(head) == meta


def test_hand_written_yaml_front_matter():
    meta, body = split(
        "---\nfrom: backend\nto: [frontend, docs]\ntype: request\n"
        "created: 2026-11-21T05:00:00Z\n---\nhello\n"
    )
    assert meta["to"] == ["frontend", "docs"]
    assert isinstance(meta["created"], str) and meta["created"].startswith("2026-11-21")
    assert body == "hello\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("no front matter", "must start with a line '---'"),
        ("---\nfrom: a\n", "no closing"),
        ("---\n- a\n- b\n---\n", "must be a mapping"),
        ("---\nfrom: [unclosed\n---\nx", "invalid YAML"),
        ("---\nx: !!python/object:os.system ls\n---\n", "invalid YAML"),
    ],
)
def test_garbage_front_matter(text, match):
    with pytest.raises(MessageFormatError, match=match):
        split(text)


def test_yaml_alias_bomb_is_bounded():
    bomb = (
        "---\na: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip(string.ascii_lowercase, string.ascii_lowercase[1:12], strict=False)
        )
        + "---\nbody"
    )
    # Refused before anything is built: loading shares objects, but anything that later
    # walks or serialises the front matter (a bounce, a log line) would expand it.
    import time

    t0 = time.perf_counter()
    with pytest.raises(MessageFormatError, match="anchors and aliases are not allowed"):
        split(bomb)
    assert time.perf_counter() - t0 < 1.0


def test_ids_are_unique_sortable_and_safe_as_file_names():
    ids = [new_message_id(1_800_000_000 + i / 1000) for i in range(200)]
    assert len(set(ids)) == 200 and ids == sorted(ids)
    assert all(is_valid_id(i) for i in ids)
    for bad in ("../x", "a/b", ".hidden", "", "a\x00b", "x" * 101, "é"):
        assert not is_valid_id(bad)


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
def test_an_id_is_ascii_letters_digits_dot_underscore_dash(value):
    # The rule as a loop per character (what is_valid_id computes with one C call);
    # non-ASCII letters and digits (é, Arabic-Indic digits, superscripts) are refused.
    allowed = set(string.ascii_letters + string.digits + "._-")
    expected = 1 <= len(value) <= 100 and value[0] not in ".-" and set(value) <= allowed
    assert is_valid_id(value) == expected
    assert is_valid_id("m" + value) == (len(value) < 100 and set(value) <= allowed)


def test_now_iso_stamps_milliseconds_across_second_boundaries():
    import time

    for ts in (0.0, 1.0004, 1_800_000_000.9994, 1_800_000_000.9996, 1_800_000_001.25, 5.5):
        secs, ms = divmod(round(ts * 1000), 1000)
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"
        assert now_iso(ts) == want


def test_token_estimate_is_about_four_chars_a_token():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4000) == 1000
