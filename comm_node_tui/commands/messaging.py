"""send, inbox, read: the agent's side of messaging. Works with no engine running: a sent
message waits durably in the outbox until the engine routes it."""

from __future__ import annotations

import os
import sys

from comm_node_tui.commands.context import print_json, workspace, workspace_and_domain
from comm_node_tui.errors import CommNodeError, UsageError
from comm_node_tui.protocol.mailbox import (
    find_in_inbox,
    list_inbox,
    mark_read,
    message_record,
    write_outbox,
)
from comm_node_tui.protocol.messages import (
    MessageFormatError,
    estimate_tokens,
    new_message_id,
    now_iso,
    read_message_file,
    to_list,
)
from comm_node_tui.protocol.paths import DomainPaths

MAX_TEXT_BYTES = 1024 * 1024


def _text(arg: str) -> str:
    if arg != "-":
        return arg
    data = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise CommNodeError(
            f"standard input is over {MAX_TEXT_BYTES} bytes; send a file path "
            "or publish an artifact instead"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommNodeError(f"standard input is not UTF-8 text (byte {exc.start})") from None


def send(args) -> int:
    ws, dom = workspace_and_domain(args)
    text = _text(args.text)
    if not text.strip():
        raise UsageError("the message is empty")
    if not text.endswith("\n"):
        text += "\n"  # as the file (and so the recipient) will have it
    try:
        recipients = to_list(args.to)
    except MessageFormatError as exc:
        raise UsageError(str(exc)) from None
    if not recipients:
        raise UsageError("--to names no recipient")
    known = set(ws.domains) | {"operator", "*"}
    for name in recipients:
        if name not in known:
            raise CommNodeError(
                f"--to: unknown domain '{name}' (known: {', '.join(sorted(ws.domains))}, "
                "operator, *)"
            )
        if name == dom.name:
            raise CommNodeError("--to: a domain cannot send a message to itself")
    if args.budget is not None and args.budget < 1:
        raise UsageError("--budget must be at least 1")
    tokens = estimate_tokens(text)
    if args.budget is not None and tokens > args.budget:
        raise CommNodeError(f"the message is about {tokens} tokens, over --budget {args.budget}")
    limit = ws.settings.router.max_message_bytes
    if len(text.encode("utf-8")) + 1024 > limit:
        raise CommNodeError(
            f"the message is over the router's limit of {limit} bytes; "
            "publish it as an artifact and send its name"
        )
    meta = {
        "id": new_message_id(),
        "from": dom.name,
        "to": recipients,
        "type": args.type,
        "task": args.task,
        "priority": args.priority,
        "token_budget": args.budget,
        "reply_to": args.reply_to,
        "created": now_iso(),
        "subject": args.subject,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    path = write_outbox(dom.paths, meta, text)
    if args.json:
        print_json({**message_record(meta, text, read=False, path=path), "tokens": tokens})
    else:
        print(f"queued {meta['id']} to {','.join(recipients)} (~{tokens} tokens)")
    return 0


def _mailbox(args) -> DomainPaths:
    """The inbox to read: the operator's (--operator: the messages agents sent `--to
    operator`, kept in the workspace's .comm-node/operator/) or the domain's."""
    if getattr(args, "operator", False):
        return workspace(args).paths.operator
    return workspace_and_domain(args)[1].paths


def inbox(args) -> int:
    messages = list_inbox(_mailbox(args), unread_only=args.unread)
    if args.json:
        print_json(messages)
        return 0
    if not messages:
        print("no unread messages" if args.unread else "the inbox is empty")
        return 0
    for m in messages:
        mark = " " if m["read"] else "*"
        first = next((ln.strip() for ln in m["body"].splitlines() if ln.strip()), "")
        task = f" [{m['task']}]" if m.get("task") else ""
        prio = f" !{m['priority']}" if m.get("priority") in ("high", "urgent") else ""
        print(f"{mark} {m['id']}  {m.get('from')}  {m.get('type')}{task}{prio}  {first[:70]}")
    unread = sum(1 for m in messages if not m["read"])
    print(f"{len(messages)} messages, {unread} unread; `comm-node read ID` to read one")
    return 0


def read(args) -> int:
    mailbox = _mailbox(args)
    try:
        path, already = find_in_inbox(mailbox, args.id)
    except LookupError as exc:
        raise CommNodeError(str(exc)) from None
    try:
        meta, body = read_message_file(path, 1024 * 1024)
    except (MessageFormatError, ValueError) as exc:
        raise CommNodeError(f"{path}: {exc}") from None
    new_path = path if already else mark_read(mailbox, path)
    if args.json:
        print_json(message_record(meta, body, read=True, path=new_path))
        return 0
    head = [
        f"id: {meta.get('id', os.path.basename(path)[:-3])}",
        f"from: {meta.get('from')}",
        f"type: {meta.get('type')}",
    ]
    for key in ("task", "priority", "reply_to", "created"):
        if meta.get(key):
            head.append(f"{key}: {meta[key]}")
    sys.stdout.write("\n".join(head) + "\n\n" + body + ("" if body.endswith("\n") else "\n"))
    return 0
