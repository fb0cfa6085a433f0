"""A notification posted to ``POST /v1/events``, read within bounds.

The body is read up to MAX_EVENT_BYTES (413 beyond, refused by its
Content-Length before anything is read when it says so), parsed as strict
JSON (no ``NaN`` or ``Infinity``, no lone surrogates, nesting at most
MAX_JSON_DEPTH deep) and checked field by field. Whatever is wrong gets a
422 naming it, in FastAPI's own error shape; nothing admitted can break what
comes after it (serialising, Redis, the clients' JSON parsers).
"""

import json
from typing import Any, Dict, List, Optional

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError

# What an event type may be: dotted names of letters, digits, "_" and "-"
# (baremetal.node.power_set.end), never a newline or markup.
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
MAX_EVENT_TYPE_LENGTH = 255
# The other text fields of a notification: ids, a priority, a time.
MAX_FIELD_LENGTH = 255


class Notification(BaseModel):
    """One OpenStack notification, as the ingest endpoint takes it."""

    event_type: str = Field(
        min_length=1,
        max_length=MAX_EVENT_TYPE_LENGTH,
        pattern=EVENT_TYPE_PATTERN,
        examples=["baremetal.node.power_set.end"],
    )
    payload: Dict[str, Any] = Field(
        examples=[{"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}]
    )
    publisher_id: Optional[str] = Field(default=None, max_length=MAX_FIELD_LENGTH)
    priority: Optional[str] = Field(default=None, max_length=MAX_FIELD_LENGTH)
    message_id: Optional[str] = Field(default=None, max_length=MAX_FIELD_LENGTH)
    timestamp: Optional[str] = Field(default=None, max_length=MAX_FIELD_LENGTH)


class BodyTooLarge(Exception):
    """A body over the bound; the message is for the client."""


class InvalidBody(Exception):
    """A body that is not an acceptable notification; ``errors`` in FastAPI's
    shape (``loc``, ``msg``, ``type``)."""

    def __init__(self, errors: List[Dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _problem(loc: List[Any], msg: str, kind: str) -> InvalidBody:
    return InvalidBody([{"loc": ["body", *loc], "msg": msg, "type": kind}])


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, or BodyTooLarge as soon as it exceeds ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; at most {limit} are taken")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_values(value: Any, max_depth: int) -> None:
    """Nesting within ``max_depth``, and no string a UTF-8 encoder refuses
    (lone surrogates, which ``\\ud800`` escapes can make)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _problem(
                    [], "a string holds a lone surrogate (not valid Unicode)", "unicode"
                ) from None
            continue
        if isinstance(item, dict):
            children: List[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise _problem([], f"nested deeper than {max_depth} levels", "depth")
        stack.extend((child, depth + 1) for child in children)


def parse_notification(body: bytes, max_depth: int) -> Notification:
    """The notification in ``body``, or InvalidBody saying what is wrong."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise _problem([], "the body is not UTF-8", "json_invalid") from None
    except RecursionError:
        raise _problem([], f"nested deeper than {max_depth} levels", "depth") from None
    except ValueError as e:
        raise _problem([], f"the body is not JSON: {e}", "json_invalid") from None
    _check_values(data, max_depth)
    try:
        return Notification.model_validate(data)
    except ValidationError as e:
        raise InvalidBody(
            [
                {
                    "loc": ["body", *error["loc"]],
                    "msg": error["msg"],
                    "type": error["type"],
                }
                for error in e.errors(include_url=False, include_input=False)
            ]
        ) from None
