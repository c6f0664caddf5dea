"""The scripted model: its HTTP surface, the script format, the private Claude home, the CLI,
and real Claude Code 2.1.330 playing against it (its transcripts are the oracle for usage)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from comm_node_tui.errors import CommNodeError
from comm_node_tui.model import (
    ClaudeHome,
    ScriptedModel,
    ScriptError,
    load_script,
    parse_script,
    prepare_claude_home,
)
from comm_node_tui.model.claude_home import DUMMY_API_KEY
from comm_node_tui.model.turn import read_turn
from tests.conftest import cli_env, run_cli, wait_for
from tests.realclaude import claude_binary

MESSAGES = "/v1/messages?beta=true"
TOOLS = [{"name": n, "input_schema": {"type": "object"}} for n in ("Agent", "Bash", "Edit", "Read")]
# What Claude Code 2.1.330 puts next to the human's words in a user message.
REMINDER = "<system-reminder>\nAttribution for git commits ...\n</system-reminder>\n"
ENV_ENTRY = {"role": "system", "content": [{"type": "text", "text": "# Environment\n..."}]}
SESSION = "0b9e5a62-5f0e-4c59-9d1e-000000000001"


# ---- helpers ------------------------------------------------------------------------------
def user(*texts: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": t} for t in texts]}


def body(*messages: dict, stream: bool = True, tools: list | None = TOOLS, **extra) -> dict:
    out = {
        "model": "claude-opus-5-5",
        "max_tokens": 1000,
        "messages": list(messages),
        "stream": stream,
        "metadata": {"user_id": json.dumps({"device_id": "d", "session_id": SESSION})},
        **extra,
    }
    if tools is not None:
        out["tools"] = tools
    return out


def prompt(text: str, **kw) -> dict:
    return body(user(REMINDER, text), ENV_ENTRY, **kw)


def call(
    url: str,
    payload: dict | bytes | None = None,
    *,
    path: str = MESSAGES,
    method: str = "POST",
    headers: dict | None = None,
) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    conn.request(
        method, path, body=data, headers={"content-type": "application/json", **(headers or {})}
    )
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw


def events(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame.strip():
            fields = dict(line.split(": ", 1) for line in frame.splitlines())
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def assemble(evs: list[tuple[str, dict]]) -> list[dict]:
    """The content blocks a client rebuilds from the stream."""
    blocks: list[dict] = []
    for name, data in evs:
        if name == "content_block_start":
            blocks.append(dict(data["content_block"], _json=""))
        elif name == "content_block_delta":
            delta, block = data["delta"], blocks[data["index"]]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                block["_json"] += delta["partial_json"]
    for block in blocks:
        raw = block.pop("_json")
        if block["type"] == "tool_use":
            block["input"] = json.loads(raw)
    return blocks


def ask(url: str, payload: dict) -> tuple[list[dict], dict]:
    """(content blocks, message_delta) of a streamed answer."""
    status, _headers, raw = call(url, payload)
    assert status == 200, raw
    evs = events(raw)
    return assemble(evs), next(d for n, d in evs if n == "message_delta")


def tool_result_turn(first: dict, reply_blocks: list[dict], result: str, **kw) -> dict:
    """The next request after the assistant called a tool and it returned `result`."""
    uses = [b for b in reply_blocks if b["type"] == "tool_use"]
    results = [{"type": "tool_result", "tool_use_id": u["id"], "content": result} for u in uses]
    return body(
        *first["messages"],
        {"role": "assistant", "content": reply_blocks},
        {"role": "user", "content": results},
        **kw,
    )


@pytest.fixture
def model():
    with ScriptedModel() as m:
        yield m


def scripted(text: str) -> ScriptedModel:
    return ScriptedModel(parse_script(text, "test.toml"))


# ---- the wire format ----------------------------------------------------------------------
def test_stream_is_anthropic_sse(model):
    status, headers, raw = call(model.base_url, prompt("hello there"))
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert re.fullmatch(r"req_[0-9a-f]{32}", headers["request-id"])
    evs = events(raw)
    names = [n for n, _ in evs]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = evs[0][1]["message"]
    assert re.fullmatch(r"msg_[0-9a-f]{32}", start["id"])
    assert start["usage"]["output_tokens"] == 1  # the API's placeholder before generation
    assert assemble(evs) == [{"type": "text", "text": "ECHO: hello there"}]
    delta = evs[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    (entry,) = model.wait_requests(1)
    assert entry.request_id == headers["request-id"] and entry.message_id == start["id"]
    assert entry.usage == delta["usage"] and entry.usage["input_tokens"] > 1
    assert entry.usage["cache_read_input_tokens"] == entry.usage["cache_creation_input_tokens"] == 0
    assert (entry.kind, entry.session_id, entry.side, entry.completed) == (
        "prompt",
        SESSION,
        False,
        True,
    )


def test_non_streaming_message_and_count_tokens(model):
    payload = prompt("CN_BASH echo hi", stream=False)
    status, headers, raw = call(model.base_url, payload)
    message = json.loads(raw)
    assert status == 200 and headers["content-type"] == "application/json"
    assert message["type"] == "message" and message["role"] == "assistant"
    text, tool = message["content"]
    assert text == {"type": "text", "text": "I will use Bash."}
    assert tool["type"] == "tool_use" and tool["name"] == "Bash"
    assert tool["input"]["command"] == "echo hi" and tool["id"].startswith("toolu_")
    assert message["stop_reason"] == "tool_use"
    status, headers, raw = call(model.base_url, payload, path="/v1/messages/count_tokens")
    assert status == 200 and "request-id" in headers
    # One fixed rule for both endpoints: the same request counts the same.
    assert json.loads(raw) == {"input_tokens": message["usage"]["input_tokens"]}


def test_tool_input_streams_as_json_deltas(model):
    long_command = "echo " + "x" * 300
    _status, _, raw = call(model.base_url, prompt(f"CN_BASH {long_command}"))
    evs = events(raw)
    json_deltas = [
        d for n, d in evs if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert len(json_deltas) > 1  # really streamed in pieces
    blocks = assemble(evs)
    assert blocks[1]["input"] == {
        "command": long_command,
        "description": "Run the requested command",
    }


def test_ids_are_unique_and_every_response_has_a_request_id(model):
    ids, request_ids = set(), set()
    for i in range(5):
        status, headers, raw = call(model.base_url, prompt(f"hello {i}", stream=False))
        ids.add(json.loads(raw)["id"])
        request_ids.add(headers["request-id"])
    for path, method in (("/v1/models", "GET"), ("/nope", "POST"), (MESSAGES, "HEAD")):
        status, headers, _ = call(model.base_url, b"", path=path, method=method)
        assert status == 404 and headers["request-id"].startswith("req_")
        request_ids.add(headers["request-id"])
    with ScriptedModel() as other:  # another server (a restart) never repeats an id
        ids.add(json.loads(call(other.base_url, prompt("hello", stream=False))[2])["id"])
    assert len(ids) == 6 and len(request_ids) == 8


@pytest.mark.parametrize(
    ("payload", "status", "error_type", "words"),
    [
        (b"{not json", 400, "invalid_request_error", "not valid JSON"),
        (b"[1, 2]", 400, "invalid_request_error", "JSON object"),
        (b'{"model": "m"}', 400, "invalid_request_error", "messages"),
        (b'{"messages": [1]}', 400, "invalid_request_error", "messages"),
        (b"x" * 5000, 413, "request_too_large", "limit"),
    ],
)
def test_bad_requests_get_anthropic_errors_and_no_traceback(
    payload, status, error_type, words, capfd
):
    with ScriptedModel(max_body=4096) as m:
        got, headers, raw = call(m.base_url, payload)
        assert got == status
        error = json.loads(raw)
        assert error["type"] == "error" and error["error"]["type"] == error_type
        assert words in error["error"]["message"]
        assert error["request_id"] == headers["request-id"]
        assert call(m.base_url, prompt("still fine"))[0] == 200
        assert m.wait_requests(2)[0].status == status
    assert capfd.readouterr().err == ""


def test_unparseable_http_is_answered_in_json():
    with ScriptedModel() as m:
        u = urlsplit(m.base_url)
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            raw = s.makefile("rb").read()
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400")
        assert json.loads(payload)["type"] == "error"


def test_a_client_that_leaves_mid_stream_costs_only_its_response(capfd):
    script = (
        '[[rules]]\nmatch = "slow"\nreply = [{text = "abcdefghij"}]\n'
        "stream = {delay = 0.05, chunks = 10}\n"
    )
    with scripted(script) as m:
        u = urlsplit(m.base_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("POST", MESSAGES, body=json.dumps(prompt("slow")).encode())
        resp = conn.getresponse()
        while b"content_block_delta" not in resp.readline():
            pass
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        (entry,) = m.wait_requests(1)
        assert entry.completed is False and entry.error and entry.status == 200
        assert call(m.base_url, prompt("hello"))[0] == 200
    assert capfd.readouterr().err == ""


def test_stop_ends_a_slow_stream_at_once():
    script = '[[rules]]\nreply = [{text = "never finishes"}]\nstream = {seconds = 60}\n'
    m = scripted(script)
    url = m.start()
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", MESSAGES, body=json.dumps(prompt("x")).encode())
    resp = conn.getresponse()
    assert resp.readline().startswith(b"")  # the stream has begun
    started = time.monotonic()
    m.stop()
    assert time.monotonic() - started < 5
    with pytest.raises((http.client.IncompleteRead, OSError)):
        resp.read()
    assert m.wait_requests(1)[0].error == "the server stopped"


def test_a_slow_stream_takes_its_seconds_and_keeps_its_text(model):
    started = time.monotonic()
    blocks, _delta = ask(model.base_url, prompt("CN_SLOW 0.6"))
    took = time.monotonic() - started
    assert 0.55 <= took < 5
    assert blocks == [{"type": "text", "text": "SLOW: this reply streamed over 0.6 seconds."}]


@pytest.mark.parametrize("stream", [True, False])
def test_a_gated_reply_waits_for_its_file(tmp_path, stream):
    gate = tmp_path / "go"
    script = f"[[rules]]\nreply = [{{text = 'after the gate'}}]\nstream = {{gate = '{gate}'}}\n"
    m = scripted(script)
    m.start()
    got: list = []
    t = threading.Thread(target=lambda: got.append(call(m.base_url, prompt("x", stream=stream))))
    t.start()
    try:
        wait_for(lambda: m.holding(gate) == 1, timeout=10, every=0.02)
        assert not got and m.requests() == []  # held: nothing answered yet
        gate.touch()
        t.join(10)
        assert not t.is_alive() and got[0][0] == 200
        assert b"after the gate" in got[0][2] and m.holding(gate) == 0
    finally:
        gate.touch()
        t.join(10)
        m.stop()


# ---- what the model sees -----------------------------------------------------------------
def test_prompt_is_the_last_user_text_without_claude_codes_additions():
    turn = read_turn(
        body(
            user(REMINDER, "first"),
            ENV_ENTRY,
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            user("second ask"),
            ENV_ENTRY,
        )
    )
    assert (turn.kind, turn.prompt, turn.session_id) == ("prompt", "second ask", SESSION)
    # the earlier prompts the request carries (a resumed conversation carries its past)
    assert turn.earlier == ("first",)


def test_rejected_tool_then_new_prompt_is_a_prompt_turn():
    rejected = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "is_error": True,
                "content": "The user doesn't want to proceed with this tool use.",
            },
            {"type": "text", "text": "[Request interrupted by user for tool use]"},
            {"type": "text", "text": "do this instead"},
        ],
    }
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "rm x"}}
        ],
    }
    turn = read_turn(body(user("CN_BASH rm x"), assistant, rejected))
    assert (turn.kind, turn.prompt) == ("prompt", "do this instead")


def test_tool_results_notifications_and_side_requests_are_told_apart():
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_9", "name": "Read", "input": {"file_path": "/a"}}
        ],
    }
    result = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_9",
                "content": [{"type": "text", "text": "1\thello"}],
            }
        ],
    }
    turn = read_turn(body(user(REMINDER, "CN_READ /a"), assistant, result))
    assert (turn.kind, turn.prompt, turn.text) == ("tool_result", "CN_READ /a", "1\thello")
    assert turn.results[0].tool == "Read" and not turn.results[0].is_error
    note = user(
        '<system-reminder>\n<task-notification>\n<summary>Agent "x" finished'
        "</summary>\n</task-notification>\n</system-reminder>"
    )
    turn = read_turn(body(user("go"), assistant, result, note))
    assert turn.kind == "notification" and "<summary>" in turn.text
    assert read_turn(body(user("Write a title"), tools=None)).kind == "side"
    compact = user("CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.\n... <summary>")
    assert read_turn(body(user("hi"), compact)).kind == "side"
    sub = body(
        user("task"),
        system=[
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.330; cc_is_subagent=true;",
            }
        ],
    )
    assert read_turn(sub).subagent


def test_side_requests_get_short_answers_that_fit_their_schema(model):
    blocks, _ = ask(model.base_url, body(user("Summarise this session"), tools=None))
    assert blocks == [{"type": "text", "text": "Scripted session"}]
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    titled = body(
        user("<session>CN_BASH rm -rf /</session>"),
        tools=None,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    blocks, _ = ask(model.base_url, titled)
    assert json.loads(blocks[0]["text"]) == {"title": "Scripted session"}
    compact = body(
        user("hi"),
        user(
            "CRITICAL: Respond with TEXT ONLY. Do NOT call any tools. "
            "an <analysis> block followed by a <summary> block"
        ),
    )
    blocks, _ = ask(model.base_url, compact)
    assert "<summary>" in blocks[0]["text"]
    entries = model.wait_requests(3)
    assert [e.side for e in entries] == [True, True, True]
    assert all(e.kind == "side" and e.rule == "builtin:side" for e in entries)


# ---- the built-in directives ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "tool", "tool_input"),
    [
        ("CN_BASH ls -la | wc -l", "Bash", {"command": "ls -la | wc -l"}),
        (
            "please CN_WRITE /tmp/a.txt one\\ntwo",
            "Write",
            {"file_path": "/tmp/a.txt", "content": "one\ntwo"},
        ),
        (
            'CN_EDIT /tmp/a.txt "old text" new',
            "Edit",
            {"file_path": "/tmp/a.txt", "old_string": "old text", "new_string": "new"},
        ),
        ("CN_READ /tmp/a.txt", "Read", {"file_path": "/tmp/a.txt"}),
        (
            "first line\nthen CN_AGENT CN_SLOW 3",
            "Agent",
            {"prompt": "CN_SLOW 3", "description": "Scripted sub-agent"},
        ),
        ('CN_TOOL TodoWrite {"todos": []}', "TodoWrite", {"todos": []}),
    ],
)
def test_directives_call_tools(model, text, tool, tool_input):
    blocks, delta = ask(model.base_url, prompt(text))
    assert blocks[0] == {"type": "text", "text": f"I will use {tool}."}
    assert blocks[1]["name"] == tool
    assert tool_input.items() <= blocks[1]["input"].items()
    assert delta["delta"]["stop_reason"] == "tool_use"


def test_agent_directive_uses_the_sub_agent_tool_claude_code_offers(model):
    old = [{"name": "Task", "input_schema": {"type": "object"}}]
    blocks, _ = ask(model.base_url, prompt("CN_AGENT look around", tools=old))
    assert blocks[1]["name"] == "Task"


def test_read_edit_reads_first_then_edits_then_reports(model):
    first = prompt("CN_READEDIT /w/x.txt hello bye")
    blocks, _ = ask(model.base_url, first)
    assert blocks[1]["name"] == "Read"
    second = tool_result_turn(first, blocks, "1\thello")
    blocks2, _ = ask(model.base_url, second)
    assert blocks2[1]["name"] == "Edit"
    assert blocks2[1]["input"] == {
        "file_path": "/w/x.txt",
        "old_string": "hello",
        "new_string": "bye",
    }
    third = tool_result_turn(second, blocks2, "The file has been updated.")
    blocks3, delta = ask(model.base_url, third)
    assert blocks3 == [{"type": "text", "text": "Tool result received: The file has been updated."}]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert [e.rule for e in model.wait_requests(3)] == [
        "builtin:CN_READEDIT",
        "builtin:CN_READEDIT.then[0]",
        "builtin:tool_result",
    ]


def test_tool_result_preview_is_200_characters_and_marks_errors(model):
    first = prompt("CN_BASH false")
    blocks, _ = ask(model.base_url, first)
    nxt = tool_result_turn(first, blocks, "e" * 500)
    nxt["messages"][-1]["content"][0]["is_error"] = True
    blocks, _ = ask(model.base_url, nxt)
    assert blocks[0]["text"] == "Tool result received: ERROR " + "e" * 194


def test_error_directive_and_bad_arguments(model):
    status, _headers, raw = call(model.base_url, prompt("CN_ERROR 529"))
    assert status == 529
    assert json.loads(raw)["error"]["type"] == "overloaded_error"
    blocks, _ = ask(model.base_url, prompt("CN_EDIT only-a-path"))
    assert blocks == [{"type": "text", "text": "usage: CN_EDIT <path> <old> <new>"}]
    blocks, _ = ask(model.base_url, prompt("no directive, just CN_BASHFUL words"))
    assert blocks[0]["text"] == "ECHO: no directive, just CN_BASHFUL words"


# ---- scripts ------------------------------------------------------------------------------
RULES = r"""
description = "unit test script"

[[rules]]
name = "deploy"
match = '(?i)deploy (?P<service>\w+) to (\w+)'
reply = [
  {text = "Deploying {service} to {2} ({{literal}})."},
  {tool = "Bash", input = {command = "./deploy.sh {service} {2}", description = "{0}"}},
]
then = [
  [{text = "Deployed {service}."}],
]

[[rules]]
name = "flaky"
match = "flaky"
times = 2
error = {status = 429, message = "slow down", retry_after = 1.5}

[[rules]]
match = "flaky"
reply = [{text = "recovered"}]
usage = {input_tokens = 7, cache_read_input_tokens = 1000}
stop_reason = "max_tokens"

[[rules]]
on = "tool_result"
tool = "Bash"
prompt = "run (?P<cmd>.+)"
match = "FAIL(?P<why>.*)"
reply = [{text = "{cmd} failed:{why}"}]

[[rules]]
on = "side"
reply = [{text = "A scripted title"}]

[[rules]]
on = "notification"
match = "<status>completed</status>"
reply = [{text = "The agent is done."}]
"""


def test_rules_match_in_order_with_capture_groups_and_then():
    with scripted(RULES) as m:
        first = prompt("Please DEPLOY web to prod now")
        blocks, _ = ask(m.base_url, first)
        assert blocks[0]["text"] == "Deploying web to prod ({literal})."
        assert blocks[1]["input"] == {
            "command": "./deploy.sh web prod",
            "description": "DEPLOY web to prod",
        }
        blocks, _ = ask(m.base_url, tool_result_turn(first, blocks, "ok"))
        assert blocks == [{"type": "text", "text": "Deployed web."}]
        assert [e.rule for e in m.wait_requests(2)] == ["deploy", "deploy.then[0]"]


def test_times_limits_a_rule_and_usage_and_stop_reason_can_be_scripted():
    with scripted(RULES) as m:
        for _ in range(2):
            status, headers, raw = call(m.base_url, prompt("flaky"))
            assert status == 429 and headers["retry-after"] == "1.5"
            assert json.loads(raw)["error"] == {"type": "rate_limit_error", "message": "slow down"}
        blocks, delta = ask(m.base_url, prompt("flaky"))
        assert blocks == [{"type": "text", "text": "recovered"}]
        assert delta["delta"]["stop_reason"] == "max_tokens"
        assert delta["usage"]["input_tokens"] == 7
        assert delta["usage"]["cache_read_input_tokens"] == 1000
        assert delta["usage"]["output_tokens"] == 3  # computed: 9 characters
        assert m.player.fired()["flaky"] == 2


def test_tool_result_side_and_notification_rules():
    with scripted(RULES) as m:
        first = prompt("run make test")
        blocks, _ = ask(m.base_url, first)  # no prompt rule: the built-in echo
        blocks = [{"type": "tool_use", "id": "toolu_x", "name": "Bash", "input": {}}]
        blocks2, _ = ask(m.base_url, tool_result_turn(first, blocks, "FAIL: 2 tests"))
        assert blocks2[0]["text"] == "make test failed:: 2 tests"
        blocks3, _ = ask(m.base_url, tool_result_turn(first, blocks, "all passed"))
        assert blocks3[0]["text"] == "Tool result received: all passed"
        blocks4, _ = ask(m.base_url, body(user("title please"), tools=None))
        assert blocks4[0]["text"] == "A scripted title"
        note = user(
            "<system-reminder><task-notification><status>completed</status>"
            "</task-notification></system-reminder>"
        )
        blocks5, _ = ask(m.base_url, body(user("go"), note))
        assert blocks5[0]["text"] == "The agent is done."


def test_directives_can_be_switched_off():
    with scripted("directives = false\n") as m:
        blocks, _ = ask(m.base_url, prompt("CN_BASH rm -rf /"))
        assert blocks == [{"type": "text", "text": "ECHO: CN_BASH rm -rf /"}]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[[rules]]\nmatch = '('\nreply = [{text = 'x'}]\n", "rules[0].match"),
        ("[[rules]]\nreply = [{text = 'x', tool = 'Bash'}]\n", "rules[0].reply[0]"),
        ("[[rules]]\nreply = []\n", "rules[0]"),
        ("[[rules]]\nreply = [{text = 'x'}]\ntimes = 0\n", "rules[0].times"),
        ("[[rules]]\nreply = [{text = 'x'}]\nonn = 'prompt'\n", "rules[0].onn"),
        ("[[rules]]\nmatch = 'a(b)'\nreply = [{text = '{2}'}]\n", "rules[0].reply[0].text"),
        (
            "[[rules]]\nmatch = 'a'\nreply = [{tool = 'Bash', input = {command = '{x}'}}]\n",
            "rules[0].reply[0].input.command",
        ),
        ("[[rules]]\nerror = {status = 200}\n", "rules[0].error.status"),
        (
            "[[rules]]\nreply = [{text = 'x'}]\nstream = {seconds = 1, delay = 1}\n",
            "rules[0].stream",
        ),
        ("[[rules]]\ntool = 'Bash'\nreply = [{text = 'x'}]\n", "rules[0]"),
        ("[[rules]\n", "not valid TOML"),
    ],
)
def test_bad_scripts_are_refused_in_one_line_naming_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScriptError) as info:
        load_script(path)
    message = str(info.value)
    assert isinstance(info.value, CommNodeError)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert field in message


def test_the_example_script_loads():
    root = Path(__file__).resolve().parent.parent
    script = load_script(root / "examples" / "model" / "rehearsal.toml")
    assert script.rules and script.description


# ---- the private Claude home ---------------------------------------------------------------
def test_claude_home_skips_first_run_screens_and_merges(tmp_path):
    home = tmp_path / "home"
    config = home / ".claude" / ".claude.json"
    config.parent.mkdir(parents=True)
    config.write_text(
        json.dumps(
            {
                "theme": "dark",
                "projects": {"/keep": {"x": 1}},
                "customApiKeyResponses": {"approved": ["old"]},
            }
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    got = prepare_claude_home(home, "http://127.0.0.1:9", trust=[work])
    data = json.loads(config.read_text())
    assert data["hasCompletedOnboarding"] is True and data["lastOnboardingVersion"]
    assert data["customApiKeyResponses"]["approved"] == ["old", DUMMY_API_KEY[-20:]]
    assert data["projects"][str(work.resolve())]["hasTrustDialogAccepted"] is True
    assert data["theme"] == "dark" and data["projects"]["/keep"] == {"x": 1}
    assert got.env == {
        "HOME": str(home.resolve()),
        "CLAUDE_CONFIG_DIR": str((home / ".claude").resolve()),
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "ANTHROPIC_API_KEY": DUMMY_API_KEY,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        "BUN_GC_TIMER_DISABLE": "1",
    }
    prepare_claude_home(home, "http://127.0.0.1:9")  # again: nothing doubles
    assert json.loads(config.read_text())["customApiKeyResponses"]["approved"] == [
        "old",
        DUMMY_API_KEY[-20:],
    ]
    env = got.environ(
        {
            "PATH": "/bin",
            "ANTHROPIC_AUTH_TOKEN": "real",
            "CLAUDECODE": "1",
            "XDG_CONFIG_HOME": "/root/.config",
            "CLAUDE_CONFIG_DIR": "/root/.claude",
        }
    )
    assert env["PATH"] == "/bin" and env["CLAUDE_CONFIG_DIR"] == got.config_dir
    assert not {"ANTHROPIC_AUTH_TOKEN", "CLAUDECODE", "XDG_CONFIG_HOME"} & set(env)


def test_claude_home_refuses_the_real_home_and_broken_configs(tmp_path):
    with pytest.raises(CommNodeError, match="your own home"):
        prepare_claude_home(os.path.expanduser("~"), "http://127.0.0.1:9")
    home = tmp_path / "h"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / ".claude.json").write_text("{broken")
    with pytest.raises(CommNodeError, match="not valid JSON"):
        prepare_claude_home(home, "http://127.0.0.1:9")


# ---- the CLI ------------------------------------------------------------------------------
def test_cli_does_not_load_the_model_package_at_start_up(tmp_path):
    code = (
        "import sys, comm_node_tui.cli as c; c.build_parser('model'); "
        "print(any(m.startswith('comm_node_tui.model') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env=cli_env(),
    )
    assert out.stdout.strip() == "False", out.stderr


def test_model_check_names_the_bad_field(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text("[[rules]]\nmatch = '('\nreply = [{text = 'x'}]\n")
    out = run_cli("model", "check", str(bad), cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "rules[0].match" in out.stderr
    good = tmp_path / "g.toml"
    good.write_text("[[rules]]\nreply = [{text = 'x'}]\n")
    out = run_cli("model", "check", str(good), cwd=tmp_path)
    assert out.returncode == 0 and "1 rule" in out.stdout


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "comm_node_tui", "model", "serve", *extra],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stdout:  # what it prints up to "Ctrl-C stops." is the whole banner
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C stops."):
            break
    url = re.search(r"http://127\.0\.0\.1:\d+", lines[0]).group(0)
    return proc, url, lines


def test_model_serve_prints_the_exports_logs_and_stops_on_sigterm(tmp_path):
    log = tmp_path / "requests.jsonl"
    proc, url, lines = _serve(tmp_path, "--log", str(log))
    try:
        assert f"  export ANTHROPIC_BASE_URL={url}" in lines
        assert "  export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in lines
        assert call(url, prompt("hello"))[0] == 200
        printed = proc.stdout.readline()
        assert "prompt [builtin:echo] 'hello'" in printed
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert "Traceback" not in proc.stderr.read()
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["prompt"] == "hello" and entry["status"] == 200


# ---- real Claude Code ----------------------------------------------------------------------
# No skip: a missing pinned build fails with one clear line (tests/realclaude.py).
needs_claude = pytest.mark.usefixtures("pinned_claude")
ALLOWED = "Bash Write Edit Read"  # print mode's default (auto) would ask before a touch


def run_claude(model: ScriptedModel, tmp_path: Path, text: str) -> tuple[dict, ClaudeHome, Path]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    home = prepare_claude_home(tmp_path / "home", model.base_url, trust=[work])
    env = home.environ()
    env["TMPDIR"] = str(tmp_path / "tmp")  # claude keeps task output under $TMPDIR/claude-UID
    os.makedirs(env["TMPDIR"], exist_ok=True)
    out = subprocess.run(
        [claude_binary(), "-p", text, "--output-format", "json", "--allowed-tools", ALLOWED],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout, out.stderr
    return json.loads(out.stdout), home, work


def transcript_usage(home: ClaudeHome, work: Path, session: str) -> dict:
    """{(message id, request id): usage} from Claude Code's transcript, each response counted
    once with its largest usage (its first line holds the placeholder output_tokens 1)."""
    name = re.sub(r"[^A-Za-z0-9]", "-", os.path.realpath(work))
    path = Path(home.config_dir, "projects", name, f"{session}.jsonl")
    best: dict = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") != "assistant" or rec["message"].get("model") == "<synthetic>":
            continue
        key = (rec["message"]["id"], rec["requestId"])
        usage = {
            k: rec["message"]["usage"][k]
            for k in (
                "input_tokens",
                "output_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            )
        }
        if key not in best or usage["output_tokens"] > best[key]["output_tokens"]:
            best[key] = usage
    return best


@needs_claude
def test_real_claude_gets_an_echo(model, tmp_path):
    result, _, _ = run_claude(model, tmp_path, "hello from the test")
    assert result["is_error"] is False
    assert result["result"] == "ECHO: hello from the test"
    (entry,) = model.wait_requests(1)
    assert entry.session_id == result["session_id"] and entry.stream is True


@needs_claude
def test_real_claude_runs_bash_and_its_transcript_matches_the_log(model, tmp_path):
    result, home, work = run_claude(model, tmp_path, "CN_BASH echo made > made.txt")
    assert (work / "made.txt").read_text() == "made\n"
    assert result["result"] == "Tool result received: (Bash completed with no output)"
    answered = {
        (e.message_id, e.request_id): e.usage
        for e in model.wait_requests(2)
        if not e.side and e.status == 200 and e.session_id == result["session_id"]
    }
    assert len(answered) == 2
    assert transcript_usage(home, work, result["session_id"]) == answered
    assert result["usage"]["output_tokens"] == sum(u["output_tokens"] for u in answered.values())


@needs_claude
def test_real_claude_writes_a_file(model, tmp_path):
    _result, _, work = run_claude(model, tmp_path, "CN_WRITE notes.md # Notes\\nline two")
    assert (work / "notes.md").read_text() == "# Notes\nline two"
    assert [e.tool_calls for e in model.wait_requests(2)] == [["Write"], []]
    assert model.wait_requests(2)[1].tool == "Write"


@needs_claude
def test_real_claude_reports_an_api_error(model, tmp_path):
    result, _, _ = run_claude(model, tmp_path, "CN_ERROR 400")
    assert result["is_error"] is True and result["api_error_status"] == 400
    assert "scripted error (CN_ERROR 400)" in result["result"]
    assert {e.status for e in model.requests()} == {400}


@needs_claude
def test_real_claude_recovers_from_a_scripted_overload(tmp_path):
    script = (
        '[[rules]]\nmatch = "flaky"\ntimes = 1\nerror = {status = 529}\n'
        '[[rules]]\nmatch = "flaky"\nreply = [{text = "recovered"}]\n'
    )
    with scripted(script) as m:
        result, _, _ = run_claude(m, tmp_path, "flaky call")
        assert result["result"] == "recovered"
        assert [e.status for e in m.wait_requests(2)] == [529, 200]


@needs_claude
def test_the_wrapper_runs_claude_against_model_serve(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    wrapper = tmp_path / "claude-rehearsal"
    proc, _url, _lines = _serve(
        tmp_path,
        "--home",
        str(tmp_path / "home"),
        "--trust",
        str(work),
        "--wrapper",
        str(wrapper),
        "--claude",
        claude_binary(),
        "-q",
    )
    try:
        env = cli_env(ANTHROPIC_AUTH_TOKEN="must-not-leak", TMPDIR=str(tmp_path))
        out = subprocess.run(
            [str(wrapper), "-p", "rehearse", "--output-format", "json"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(out.stdout)["result"] == "ECHO: rehearse", out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
