"""The plain shape of tasks.toml read without tomllib (coordination/tasks.py,
plain_tasks_toml): whatever it answers is tomllib's answer, value for value and type for type,
and whatever tomllib refuses it hands back (None) for tomllib to refuse."""

from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from comm_node_tui.coordination.tasks import load_native_text, plain_tasks_toml

KEYS = ["id", "title", "domain", "priority", "depends_on", "status", "notes", "a-b_1", "1"]
# characters that matter to TOML's strings and comments, beside ordinary ones
CHARS = st.sampled_from([*"ab #\"\\\t\r\x00\x7f\x1fé€\u2028=[],'", "\U0001f600"])
TEXT = st.text(CHARS, max_size=8)


def basic(s: str) -> str:
    return f'"{s}"'


ODD = [
    "true", "false", "+0", "-0", "+7", "007", "1_000", "1.5", "1e3", "inf", "nan",
    "1979-05-27", "'literal'", '"""multi\nline"""', '"esc\\n"', "{ a = 1 }", "[1, 2]",
    '["a",]', "[ ]", "[,]", '["a" "b"]', '[\n"a"]', "True", "",
]  # fmt: skip
VALUES = st.one_of(
    TEXT.map(basic),  # often plain, sometimes an escape or a control character
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(ODD),
    st.lists(TEXT.map(basic), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
)
SPACE = st.sampled_from(["", " ", "  ", "\t"])
COMMENT = st.one_of(st.just(""), TEXT.map(lambda s: " #" + s))
HEADER = st.sampled_from(["[[tasks]]", "[[ tasks ]]", "[tasks]", "[other]", "[[tasks.x]]"])


@st.composite
def lines(draw) -> str:
    kind = draw(st.sampled_from(["kv", "kv", "kv", "kv", "header", "blank", "comment", "junk"]))
    if kind == "header":
        return draw(SPACE) + draw(HEADER) + draw(SPACE) + draw(COMMENT)
    if kind == "blank":
        return draw(SPACE)
    if kind == "comment":
        return draw(SPACE) + "#" + draw(TEXT)
    if kind == "junk":
        return draw(TEXT)
    key = draw(st.sampled_from([*KEYS, "a.b", '"quoted"', "", "x y"]))
    return f"{draw(SPACE)}{key}{draw(SPACE)}={draw(SPACE)}{draw(VALUES)}{draw(COMMENT)}"


PLAIN_TEXT = st.text(st.sampled_from([*"ab #=[],'\té€\u2028", "\U0001f600"]), max_size=8)
PLAIN_VALUES = st.one_of(
    PLAIN_TEXT.map(basic),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["true", "false", "+7", "-0", "[]", '["a",]']),
    st.lists(PLAIN_TEXT.map(basic), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
)

PLAIN_COMMENT = st.one_of(st.just(""), PLAIN_TEXT.map(lambda s: " #" + s))


@st.composite
def plain_lines(draw) -> str:
    """Lines of the plain shape (a key may repeat: tomllib's error, handed over)."""
    kind = draw(st.sampled_from(["kv"] * 4 + ["header"] * 2 + ["blank", "comment"]))
    if kind == "header":
        return draw(SPACE) + "[[tasks]]" + draw(PLAIN_COMMENT)
    if kind == "blank":
        return draw(SPACE)
    if kind == "comment":
        return "#" + draw(PLAIN_TEXT)
    key = draw(st.sampled_from(KEYS))
    return f"{draw(SPACE)}{key}{draw(SPACE)}={draw(SPACE)}{draw(PLAIN_VALUES)}{draw(PLAIN_COMMENT)}"


@st.composite
def files(draw) -> str:
    if draw(st.booleans()):  # a plain file, sometimes with one line of anything in it
        body = draw(st.lists(plain_lines(), max_size=14))
        if draw(st.booleans()):
            body.insert(draw(st.integers(0, len(body))), draw(lines()))
    else:
        body = draw(st.lists(lines(), max_size=14))
    if draw(st.booleans()):  # most real files begin with a task
        body.insert(0, "[[tasks]]")
    newline = draw(st.sampled_from(["\n"] * 4 + ["\r\n"]))
    return newline.join(body) + draw(st.sampled_from(["", "\n"]))


def tomllib_answer(text: str) -> str | None:
    try:
        return repr(tomllib.loads(text))  # repr: True and 1 are equal, but not the same
    except tomllib.TOMLDecodeError:
        return None


@settings(max_examples=600, deadline=None)
@given(files())
def test_the_plain_reading_is_tomllibs_or_none(text: str) -> None:
    plain = plain_tasks_toml(text)
    expected = tomllib_answer(text)
    if plain is not None:
        assert repr(plain) == expected
    if expected is None:
        assert plain is None  # an invalid file is for tomllib to refuse


def test_a_plain_task_file_is_read_without_tomllib_and_a_rich_one_with_it() -> None:
    plain = (
        '# the plan\n[[tasks]]\nid = "T1"\ntitle = "design # not a comment"\n'
        'domain = "api"\npriority = -1\n\n[[tasks]]\n  id = "T2"  # why\n'
        'depends_on = ["T1", "T0",]\nrequired_artifacts = []\n'
    )
    assert plain_tasks_toml(plain) == tomllib.loads(plain)
    rich = plain + 'notes = """\nsee the design\n"""\n'
    assert plain_tasks_toml(rich) is None
    # the loader's result is the same either way the text is read
    tasks, problems = load_native_text(rich, "tasks.toml", {"api"})
    assert [t.id for t in tasks.values()] == ["T1", "T2"]
    assert tasks["T1"].title == "design # not a comment" and tasks["T1"].priority == -1
    assert [d[1] for d in tasks["T2"].deps] == ["T1", "T0"]
    assert problems == [] and tasks["T2"].contract.context == "see the design"
