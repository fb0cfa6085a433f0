"""One event as WebSocket clients receive it: the seed's ``EventMessage``.

Its JSON is ``id, timestamp, event_type, source, node_name, data``.
"""

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from osism.services.notifications import subject_of


def new_event_id() -> str:
    return str(uuid.uuid4())


def utc_now_text() -> str:
    """Now in ISO 8601 with a "Z" suffix, the text the seed's
    ``datetime.utcnow().isoformat() + "Z"`` gave (utcnow is deprecated)."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class EventMessage:
    """One event as WebSocket clients receive it."""

    def __init__(
        self,
        event_type: str,
        source: str,
        data: Dict[str, Any],
        node_name: Optional[str] = None,
        *,
        event_id: Optional[str] = None,
        timestamp: Optional[str] = None,
    ) -> None:
        # An event keeps the id and time it got where it entered the stream
        # (the listener, POST /v1/events, `osism events publish`); one made
        # here without them gets new ones, as in the seed.
        self.id = new_event_id() if event_id is None else event_id
        self.timestamp = utc_now_text() if timestamp is None else timestamp
        self.event_type = event_type
        self.source = source
        self.data = data
        self.node_name = node_name

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "event_type": self.event_type,
            "source": self.source,
            "node_name": self.node_name,
            "data": self.data,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def event_from_notification(
    event_type: str,
    payload: Dict[str, Any],
    publisher_id: Optional[str] = None,
    event_id: Optional[str] = None,
    timestamp: Optional[str] = None,
) -> EventMessage:
    """The event an OpenStack notification becomes: its data is a copy of the
    payload plus ``service_type`` and ``resource_id`` (and ``publisher_id``
    when the notification named it). Raises for a payload that is not an
    object."""
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be an object, not {type(payload).__name__}")
    subject = subject_of(event_type, payload, publisher_id)
    data = dict(payload)
    data["service_type"] = subject.service_type
    data["resource_id"] = subject.resource_id
    if publisher_id is not None:
        data["publisher_id"] = publisher_id
    return EventMessage(
        event_type=event_type,
        source="openstack",
        data=data,
        node_name=subject.node_name,
        event_id=event_id,
        timestamp=timestamp,
    )
