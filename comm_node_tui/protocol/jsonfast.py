"""`json.loads` / `json.load` / `json.dumps` for the hook and agent-CLI hot path, without
importing `json`.

Importing the standard `json` package imports `re`, and `re` imports `enum`: together about
as much CPU as starting Python itself (`python -X importtime`, issue 22), paid by every hook
call. The work itself is done by the same C accelerator `json` uses (`_json`), so valid input
gives exactly what `json` gives. Anything else (invalid JSON, a BOM, other encodings, a type
`json` would reject or hand to `default`, a missing `_json`) is handed to the standard `json`
itself, so errors and unusual cases are `json`'s own, byte for byte
(tests/test_jsonfast.py compares the two).

Use: `from comm_node_tui.protocol import jsonfast as json`, for the calls below only.
"""

from __future__ import annotations

TYPE_CHECKING = False  # annotations only: typing costs the hot path's import time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

try:
    import _json
except ImportError:  # an interpreter without the accelerator: the standard json does it all
    _json = None  # type: ignore[assignment]

_WS = " \t\n\r"  # JSON's whitespace (json.decoder.WHITESPACE)
_INF = float("inf")


def _std() -> Any:
    import json

    return json


class _Context:
    """What `_json.make_scanner` reads from a `json.JSONDecoder` (the defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": -_INF, "Infinity": _INF, "NaN": _INF - _INF}.__getitem__
    memo: dict = {}


# typeshed's make_scanner wants a JSONDecoder; it reads only the attributes above
_scan: Any = _json.make_scanner(_Context()) if _json is not None else None  # type: ignore[arg-type]


def loads(s: str | bytes | bytearray) -> Any:
    """`json.loads(s)` with the default options."""
    if _scan is None:
        return _std().loads(s)
    if not isinstance(s, str):
        # json.detect_encoding: no BOM and no NUL in the first bytes means UTF-8.
        head = bytes(s[:4])
        if b"\0" in head or head[:1] in (b"\xef", b"\xfe", b"\xff"):
            return _std().loads(s)
        s = bytes(s).decode("utf-8", "surrogatepass")
    if s.startswith("\ufeff"):
        return _std().loads(s)
    start = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, start)
    except Exception:  # invalid: let json raise its own JSONDecodeError
        return _std().loads(s)
    if end != len(s) and s[end:].lstrip(_WS):
        return _std().loads(s)  # "Extra data"
    return obj


def load(fp: IO[str]) -> Any:
    """`json.load(fp)` with the default options."""
    return loads(fp.read())


class _Unhandled(Exception):
    """A value this module leaves to the standard json."""


def _refuse(o: object) -> Any:
    raise _Unhandled


def dumps(
    obj: Any,
    *,
    ensure_ascii: bool = True,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """`json.dumps` with these options (the others at their defaults)."""
    kwargs = {
        "ensure_ascii": ensure_ascii,
        "indent": indent,
        "separators": separators,
        "sort_keys": sort_keys,
        "default": default,
    }
    if _json is None or (indent is not None and (type(indent) is not int or indent < 0)):
        return _std().dumps(obj, **kwargs)
    encode = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if indent is not None:
        item_sep, key_sep = separators or (",", ": ")
        try:
            out: list[str] = []
            _indented(obj, out, encode, " " * indent, 0, item_sep, key_sep, sort_keys)
        except (_Unhandled, RecursionError, TypeError):  # json's own result or error
            return _std().dumps(obj, **kwargs)
        return "".join(out)
    if type(obj) is str:
        return encode(obj)
    item_sep, key_sep = separators or (", ", ": ")
    encoder = _json.make_encoder(
        {}, default or _refuse, encode, None, key_sep, item_sep, sort_keys, False, True
    )
    try:
        return "".join(encoder(obj, 0))
    except _Unhandled:  # a type json would refuse: its own TypeError, word for word
        return _std().dumps(obj, **kwargs)


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _indented(
    o: object,
    out: list[str],
    encode: Callable[[str], str],
    unit: str,
    level: int,
    item_sep: str,
    key_sep: str,
    sort_keys: bool,
) -> None:
    """json.encoder._make_iterencode with an indent, for plain JSON types only (exact types:
    subclasses, other keys and other values raise _Unhandled, for the standard json)."""
    t = type(o)
    if t is str:
        out.append(encode(o))  # type: ignore[arg-type]
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif t is int:
        out.append(int.__repr__(o))
    elif t is float:
        out.append(_float(o))  # type: ignore[arg-type]
    elif t is list or t is tuple:
        if not o:
            out.append("[]")
            return
        inner = "\n" + unit * (level + 1)
        out.append("[" + inner)
        first = True
        for v in o:  # type: ignore[attr-defined]
            if not first:
                out.append(item_sep + inner)
            first = False
            _indented(v, out, encode, unit, level + 1, item_sep, key_sep, sort_keys)
        out.append("\n" + unit * level + "]")
    elif t is dict:
        if not o:
            out.append("{}")
            return
        items = o.items()  # type: ignore[attr-defined]
        if sort_keys:
            items = sorted(items)
        inner = "\n" + unit * (level + 1)
        out.append("{" + inner)
        first = True
        for k, v in items:
            if type(k) is not str:
                raise _Unhandled
            if not first:
                out.append(item_sep + inner)
            first = False
            out.append(encode(k) + key_sep)
            _indented(v, out, encode, unit, level + 1, item_sep, key_sep, sort_keys)
        out.append("\n" + unit * level + "}")
    else:
        raise _Unhandled
