"""The message on the Redis channel.

The seed's format is ``{"event_type": str, "payload": object}``. Keys that
may ride along: ``id`` and ``timestamp``, given to the event where it entered
the stream (every API process delivers it with them, and none twice);
``publisher_id``, the notification's publisher (``nova-compute:host1``); and
``origin``, set by an API process on an event it already delivered to its own
clients, so that its own subscriber skips it. Everything else a message
carries is passed on as it is.
"""

import json
from typing import Any, Dict, Optional

Event = Dict[str, Any]

CHANNEL = "osism:events"
ORIGIN_KEY = "origin"
PUBLISHER_KEY = "publisher_id"
ID_KEY = "id"
TIMESTAMP_KEY = "timestamp"


class InvalidEvent(ValueError):
    """A message that is JSON but not an event; the text says why."""


def make_event(
    event_type: str,
    payload: Dict[str, Any],
    publisher_id: Optional[str] = None,
    event_id: Optional[str] = None,
    timestamp: Optional[str] = None,
) -> Event:
    """The message of an event; without the optional keys it is the seed's."""
    event: Event = {"event_type": event_type, "payload": payload}
    for key, value in (
        (PUBLISHER_KEY, publisher_id),
        (ID_KEY, event_id),
        (TIMESTAMP_KEY, timestamp),
    ):
        if value is not None:
            event[key] = value
    return event


def encode(event: Event) -> str:
    return json.dumps(event)


def invalid_reason(data: Any) -> Optional[str]:
    """Why a decoded message is not an event, or None if it is one."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if not isinstance(data.get("event_type"), str):
        return "missing or non-string 'event_type'"
    if not isinstance(data.get("payload"), dict):
        return "missing or non-object 'payload'"
    return None


def decode(message: str) -> Event:
    """The event in ``message``; raises json.JSONDecodeError for text that is
    not JSON and :class:`InvalidEvent` for JSON that is not an event."""
    data = json.loads(message)
    reason = invalid_reason(data)
    if reason is not None:
        raise InvalidEvent(reason)
    event: Event = data
    return event


def text_of(event: Event, key: str) -> Optional[str]:
    """The event's ``key`` (publisher id, id, timestamp); None when absent, not
    a string or empty (the event is still worth delivering without it)."""
    value = event.get(key)
    return value if isinstance(value, str) and value else None


def publisher_id_of(event: Event) -> Optional[str]:
    return text_of(event, PUBLISHER_KEY)


def id_of(event: Event) -> Optional[str]:
    return text_of(event, ID_KEY)


def with_origin(event: Event, origin: str) -> Event:
    return {**event, ORIGIN_KEY: origin}


def origin_of(event: Event) -> Any:
    return event.get(ORIGIN_KEY)
