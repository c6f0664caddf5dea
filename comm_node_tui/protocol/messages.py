"""Messages on disk: Markdown with a YAML front matter.

comm-node writes front matter as one `key: <JSON value>` per line. JSON scalars and arrays are
valid YAML, so any YAML reader understands the files, and comm-node reads its own files back
with `json` alone (no YAML import on the agent CLI's path). Hand-written front matter that is
not in that form falls back to a safe YAML parse.
"""

from __future__ import annotations

import os
import time

from comm_node_tui.protocol import jsonfast as json

try:  # the C encoder json.dumps(str, ensure_ascii=False) uses (render writes ~10 a message)
    from _json import encode_basestring as _encode_str
except ImportError:
    _encode_str = None  # type: ignore[assignment]

FIELDS = ("id", "from", "to", "type", "task", "priority", "token_budget", "reply_to", "created")
PRIORITIES = ("low", "normal", "high", "urgent")
CHARS_PER_TOKEN = 4
MAX_FRONT_MATTER = 16 * 1024


class MessageFormatError(ValueError):
    """The file is not a message: names the field and what is wrong."""


_last_second: tuple[int, str] = (-1, "")  # the router stamps thousands a second


def now_iso(ts: float | None = None) -> str:
    """UTC time as ISO 8601 with milliseconds and a Z (sortable as text)."""
    global _last_second
    secs, ms = divmod(round((time.time() if ts is None else ts) * 1000), 1000)
    # strftime(gmtime()) is most of the cost, and within one second its text is the same.
    cached_secs, text = _last_second
    if secs != cached_secs:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        _last_second = (secs, text)
    return f"{text}.{ms:03d}Z"


def new_message_id(ts: float | None = None) -> str:
    """A unique, time-sortable message id such as m-20261121T050718123-3fa9c2d1."""
    secs, ms = divmod(round((time.time() if ts is None else ts) * 1000), 1000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs)) + f"{ms:03d}"
    return f"m-{stamp}-{os.urandom(4).hex()}"


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English and code.

    Trailing newlines are not counted, so the sender's estimate and the router's agree.
    """
    text = text.rstrip("\n")
    return max(1, -(-len(text) // CHARS_PER_TOKEN)) if text else 0


def is_valid_id(value: object) -> bool:
    """Ids become file names: letters, digits, `.`, `_`, `-`; no separators, no leading dot."""
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        return False
    if value[0] in ".-":
        return False
    # Stripping every allowed character leaves nothing: one C call, where a loop per
    # character was most of the router's validation time (issue 22).
    return not value.strip(_ID_CHARS)


_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


def _yaml_scalar(value: object) -> str:
    # JSON with every character outside YAML's printable set escaped, so PyYAML and other
    # YAML readers accept what json.loads accepts.
    if type(value) is str and _encode_str is not None:
        text = _encode_str(value)  # what dumps does for a str, without its option handling
    else:
        text = json.dumps(value, ensure_ascii=False)
    if text.isprintable() and "\u2028" not in text and "\u2029" not in text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch.isprintable() and code not in (0x2028, 0x2029, 0xFEFF):
            out.append(ch)
        elif code > 0xFFFF:
            out.append(f"\\U{code:08x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def render(meta: dict, body: str) -> str:
    """The file text of a message: front matter in FIELDS order, then extra keys, then body."""
    lines = ["---"]
    for key in FIELDS:
        if key in meta:
            lines.append(f"{key}: {_yaml_scalar(meta[key])}")
    for key, value in meta.items():
        if key not in FIELDS:
            lines.append(f"{key}: {_yaml_scalar(value)}")
    lines.append("---")
    if not body.endswith("\n"):
        body += "\n"
    return "\n".join(lines) + "\n" + body


def split(text: str) -> tuple[dict, str]:
    """Front matter and body of a message file; MessageFormatError when there is none."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not (text.startswith("---\n") or text.startswith("---\r\n")):
        raise MessageFormatError("front matter: the file must start with a line '---'")
    text = text.replace("\r\n", "\n")
    end = text.find("\n---\n", 3)
    if end == -1:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise MessageFormatError("front matter: no closing '---' line")
    head = text[4:end]
    body = text[end + 5 :]
    if len(head) > MAX_FRONT_MATTER:
        raise MessageFormatError(f"front matter: over {MAX_FRONT_MATTER} bytes")
    return _parse_head(head), body


def _parse_head(head: str) -> dict:
    meta: dict = {}
    try:
        for line in head.split("\n"):
            if not line.strip():
                continue
            key, sep, value = line.partition(": ")
            if not sep or not key.isidentifier() or key in meta:
                raise ValueError(line)
            meta[key] = json.loads(value)
        return meta
    except (ValueError, RecursionError):
        pass
    return _parse_head_yaml(head)


def _parse_head_yaml(head: str) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # Anchors and aliases are refused before anything is built: a few hundred bytes of
        # nested aliases ("billion laughs") expand to gigabytes. Front matter never needs them.
        for event in yaml.parse(head, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise MessageFormatError("front matter: YAML anchors and aliases are not allowed")
        meta = yaml.load(head, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise MessageFormatError(f"front matter: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise MessageFormatError("front matter: nested too deeply") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise MessageFormatError("front matter: must be a mapping of keys to values")
    # YAML turns unquoted timestamps into datetimes; the protocol keeps them as text.
    for key, value in list(meta.items()):
        if not isinstance(key, str):
            raise MessageFormatError(f"front matter: key {key!r} is not text")
        if hasattr(value, "isoformat"):
            meta[key] = value.isoformat()
    return meta


def read_message_file(path: str, limit: int) -> tuple[dict, str]:
    """Meta and body of a message file written by comm-node (bounded, lenient)."""
    from comm_node_tui.protocol.fileio import read_bounded

    raw = read_bounded(path, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageFormatError(f"not UTF-8 text (byte {exc.start})") from None
    return split(text)


def to_list(value: object) -> list[str]:
    """`to` may be a string ("a,b" or "*") or a list of names."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise MessageFormatError("to: every recipient must be a domain name")
        return [v.strip() for v in value if v.strip()]
    raise MessageFormatError("to: must be a domain name, a comma-separated list, or a list")
