"""protocol/jsonfast.py gives what the standard json gives (values, text, errors), and the edit
guard's matcher without `re` agrees with `re.match` (issue 22: the hook's import budget)."""

from __future__ import annotations

import io
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comm_node_tui.hooks.guard import _simple, matches
from comm_node_tui.protocol import jsonfast
from comm_node_tui.protocol.globs import glob_regex

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _same(a: object, b: object) -> bool:
    """Equal, with NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


OPTIONS = [
    {},
    {"ensure_ascii": False},
    {"ensure_ascii": False, "separators": (",", ":")},
    {"ensure_ascii": False, "indent": 1},
    {"indent": 1, "sort_keys": True},
    {"ensure_ascii": False, "indent": 2},
    {"sort_keys": True},
]


@settings(max_examples=300, deadline=None)
@given(values)
def test_dumps_and_loads_match_the_standard_json(value):
    for opts in OPTIONS:
        text = json.dumps(value, **opts)
        assert jsonfast.dumps(value, **opts) == text, opts
        assert _same(jsonfast.loads(text), json.loads(text))
        assert _same(jsonfast.loads(text.encode()), json.loads(text.encode()))
        assert _same(jsonfast.load(io.StringIO(f" \n{text}\r\n")), json.loads(text))


def _error(fn, *args, **kwargs) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "{",
        '{"a": 1} x',
        '{"a": 1}{}',
        "[1, 2,]",
        "\ufeff{}",
        '{"a": "\x01"}',
        "nan",
        "[1e400, -Infinity, NaN]",
        b"\xef\xbb\xbf{}",
        b'\xff\xfe{\x00}\x00',
        b"\x00\x00\x00[",
        b'{"a": "\xff"}',
    ],
)
def test_bad_or_odd_input_gets_the_standard_jsons_result_or_error(text):
    try:
        expected = json.loads(text)
    except Exception as exc:  # the same error, word for word
        assert _error(jsonfast.loads, text) == (type(exc), str(exc))
    else:
        assert _same(jsonfast.loads(text), expected)


def test_what_json_refuses_or_hands_to_default_is_jsons_own():
    class Odd:
        def __repr__(self) -> str:
            return "odd"

    odd = {"x": Odd()}
    for opts in ({}, {"indent": 1}):
        assert _error(jsonfast.dumps, odd, **opts) == _error(json.dumps, odd, **opts)
        assert jsonfast.dumps(odd, default=repr, **opts) == json.dumps(odd, default=repr, **opts)
        loop: list = []
        loop.append(loop)
        assert _error(jsonfast.dumps, loop, **opts) == _error(json.dumps, loop, **opts)
        # keys json converts (numbers, None) or sorts with an error
        assert jsonfast.dumps({1: 2, None: 3}, **opts) == json.dumps({1: 2, None: 3}, **opts)
        assert _error(jsonfast.dumps, {1: 2, "a": 3}, sort_keys=True, **opts) == _error(
            json.dumps, {1: 2, "a": 3}, sort_keys=True, **opts
        )


PATTERNS = [
    *("**", "src/**", "src/", "src", "/src/a.py", "a.py", "*.py", "src/*.py", "/src"),
    *("docs/**/*.md", "src/a b.py", "/", "**/x", "x/**/", "a+b/c(1).txt", "[ab]c", "é/ü.txt"),
]
segment = st.sampled_from(
    ["src", "a.py", "a b.py", "x", "a+b", "c(1).txt", "ac", "é", "ü.txt", "docs", "r.md", "\n", ""]
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATTERNS), st.lists(segment, max_size=4), st.sampled_from(["", "\n", "/"]))
def test_the_guards_matcher_agrees_with_re(pattern, segs, end):
    rx = glob_regex(("ws", "d-0.1"), pattern)
    key = "/".join(["ws", "d-0.1", *segs]) + end
    assert matches(rx, key) == (re.match(rx, key) is not None)


def test_the_common_scope_and_lock_globs_need_no_re():
    for pattern in ("**", "src/**", "/src/a.py", "/src", "x/**/"):
        assert _simple(glob_regex(("ws", "d0"), pattern)) is not None, pattern
    assert _simple(r"^ws/\d") is None  # an escape that is not a literal: left to re
    with pytest.raises(ValueError):
        matches("^ws/(", "ws/x")
