"""Messages API payloads: the message, its usage, and the server-sent events that stream it.

Events are exactly the sequence Anthropic's API sends: message_start (usage with the
placeholder output_tokens 1), ping, for each block content_block_start, its deltas
(text_delta or input_json_delta) and content_block_stop, then message_delta with the
stop_reason and the final usage, then message_stop.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

from comm_node_tui.model.player import Content, Reply

CHARS_PER_TOKEN = 4  # the fixed rule that turns sizes into token counts
TEXT_PIECE = 32  # characters per text delta when no chunk count is scripted
JSON_PIECE = 64


def new_message_id() -> str:
    # Random, not a counter: Claude Code keys transcript entries on message id + request id,
    # so ids must stay unique across server restarts too.
    return "msg_" + secrets.token_hex(16)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def input_tokens(body: dict) -> int:
    """Tokens of a request: its system, tools and messages as compact JSON, 4 characters per
    token. The same rule serves /v1/messages and /v1/messages/count_tokens."""
    payload = {k: body.get(k) for k in ("system", "tools", "messages")}
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return _tokens(len(text))


def output_tokens(content: tuple[Content, ...]) -> int:
    chars = 0
    for c in content:
        if c.tool is None:
            chars += len(c.text or "")
        else:
            chars += len(c.tool) + len(_input_json(c))
    return _tokens(chars)


def usage(body: dict, reply: Reply) -> dict[str, int]:
    out = {
        "input_tokens": input_tokens(body),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens(reply.content),
    }
    if reply.usage is not None:
        for key, value in reply.usage.model_dump(exclude_none=True).items():
            out[key] = value
    return out


def _input_json(c: Content) -> str:
    return json.dumps(c.input or {}, ensure_ascii=False, separators=(",", ":"))


def message(message_id: str, model: str, reply: Reply, use: dict[str, int]) -> dict[str, Any]:
    """The whole message (a non-streaming response)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [c.api() for c in reply.content],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": dict(use),
    }


def split(text: str, pieces: int) -> list[str]:
    """`text` cut into `pieces` nearly equal parts (fewer when it is shorter); never empty."""
    if not text:
        return [""]
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]
    delta: bool = False  # a content delta: the events a slow stream spaces out

    def encode(self) -> bytes:
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"event: {self.name}\ndata: {payload}\n\n".encode()


PING = Event("ping", {"type": "ping"})


def events(
    message_id: str, model: str, reply: Reply, use: dict[str, int], chunks: int | None = None
) -> list[Event]:
    """The stream for `reply`; `chunks` = deltas per block (default: by length)."""
    start_usage = dict(use, output_tokens=1)  # what the API reports before it has generated
    out = [
        Event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        PING,
    ]
    for index, c in enumerate(reply.content):
        block: dict[str, Any]
        if c.tool is None:
            text = c.text or ""
            block = {"type": "text", "text": ""}
            parts = split(text, chunks or math.ceil(len(text) / TEXT_PIECE))
            deltas = [{"type": "text_delta", "text": p} for p in parts]
        else:
            raw = _input_json(c)
            block = {"type": "tool_use", "id": c.id, "name": c.tool, "input": {}}
            parts = split(raw, chunks or math.ceil(len(raw) / JSON_PIECE))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
        out.append(
            Event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        for d in deltas:
            out.append(
                Event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": d},
                    delta=True,
                )
            )
        out.append(Event("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        Event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": dict(use),
            },
        )
    )
    out.append(Event("message_stop", {"type": "message_stop"}))
    return out


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
