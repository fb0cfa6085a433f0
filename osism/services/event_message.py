"""One event as WebSocket clients receive it: the seed's ``EventMessage``.

Its JSON is ``id, timestamp, event_type, source, node_name, data``.
"""

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Optional


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
