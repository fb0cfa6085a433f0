"""The capped Redis stream next to the channel: recent events to catch up on.

Pub/sub delivers a message only to whoever is subscribed at that moment.
Every event published on the channel is also appended to the stream
``<channel>:history`` (``XADD ... MAXLEN ~ EVENT_HISTORY_SIZE``), so that an
API process that starts knows the recent events (a client that resumes after
the API restarted finds its last event), and one whose subscription broke
catches up on what was published meanwhile. The channel stays pub/sub: it is
the contract with the other OSISM components.
"""

import json
from typing import Any, List, Optional, Tuple

from osism.services.bridge import wire
from osism.services.bridge.wire import Event

# Entries read back per XREVRANGE call while looking for an event.
PAGE = 200
FIELD = "event"


def stream_key(channel: str) -> str:
    return f"{channel}:history"


class RedisHistory:
    """The stream of at most about ``size`` events; ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size

    def publish(self, client: Any, channel: str, message: str) -> int:
        """Keep ``message`` and publish it; how many subscribers received it."""
        self.append(client, channel, message)
        return int(client.publish(channel, message))

    def append(self, client: Any, channel: str, message: str) -> None:
        """Keep ``message`` (an encoded event) as the newest entry."""
        if self.size:
            client.xadd(
                stream_key(channel),
                {FIELD: message},
                maxlen=self.size,
                approximate=True,
            )

    def newest(self, client: Any, channel: str) -> List[Event]:
        """The events of the stream, oldest first."""
        if not self.size:
            return []
        entries = client.xrevrange(stream_key(channel), "+", "-", count=self.size)
        return [event for event in map(_event, _listed(entries)) if event][::-1]

    def since(
        self, client: Any, channel: str, event_id: str
    ) -> Tuple[List[Event], bool]:
        """The events after the one with ``event_id``, oldest first, and
        whether that one was found; not found, all the stream holds."""
        newer: List[Event] = []
        end = "+"
        while self.size and len(newer) < self.size:
            entries = _listed(
                client.xrevrange(stream_key(channel), end, "-", count=PAGE)
            )
            for entry in entries:
                event = _event(entry)
                if event is None:
                    continue
                if wire.id_of(event) == event_id:
                    return newer[::-1], True
                newer.append(event)
            if len(entries) < PAGE:
                break
            end = f"({entries[-1][0]}"
        return newer[::-1], False


def _listed(entries: Any) -> List[Any]:
    return entries if isinstance(entries, list) else []


def _event(entry: Any) -> Optional[Event]:
    """The event of a stream entry ``(id, {"event": message})``; None for an
    entry that is not one (written by someone else)."""
    try:
        _, fields = entry
        return wire.decode(fields[FIELD])
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        return None
