"""Pydantic models for what agents hand to the engine (untrusted input at the edge).

Only the engine imports this module; the agent CLI stays on the lean stdlib path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from comm_node_tui.protocol.messages import is_valid_id

TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
ENGINE_TYPES = {"bounce", "nudge"}
MAX_CLOCK_SKEW_S = 300


class OutboxMessage(BaseModel):
    """Front matter of a message in an outbox. Unknown keys are ignored, not delivered."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: list[str]
    type: Annotated[str, Field(pattern=TYPE_PATTERN)]
    task: Annotated[str, Field(max_length=200)] | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    token_budget: Annotated[int, Field(ge=1)] | None = None
    reply_to: str | None = None
    created: Annotated[str, Field(max_length=40)] | None = None
    subject: Annotated[str, Field(max_length=200)] | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _split_to(cls, v: object) -> object:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("to")
    @classmethod
    def _some_recipient(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("names no recipient")
        if len(v) > 256:
            raise ValueError("names more than 256 recipients")
        return list(dict.fromkeys(v))

    @field_validator("task", mode="before")
    @classmethod
    def _task_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("id", "reply_to")
    @classmethod
    def _id_shape(cls, v: str | None) -> str | None:
        if v is not None and not is_valid_id(v):
            raise ValueError("must be letters, digits, '.', '_' or '-' (at most 100)")
        return v

    @field_validator("created")
    @classmethod
    def _plausible_time(cls, v: str | None) -> str | None:
        # Agents' `comm-node send` stamps the time; a hand-written one must be a real time
        # that is not ahead of the clock (inboxes sort by it) nor absurdly old.
        if v is None:
            return v
        from datetime import UTC, datetime

        try:
            when = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{v!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        if (when - now).total_seconds() > MAX_CLOCK_SKEW_S:
            raise ValueError(f"{v} is in the future")
        if when.year < 2000:
            raise ValueError(f"{v} is implausibly old")
        return v

    @field_validator("type")
    @classmethod
    def _not_engine_type(cls, v: str) -> str:
        if v in ENGINE_TYPES:
            raise ValueError(f"'{v}' messages come only from comm-node")
        return v


def first_problem(exc: Exception) -> str:
    """`field: what is wrong` for the first error of a ValidationError."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    err = errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "front matter"
    if err["type"] == "missing":
        return f"{loc}: required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}"
