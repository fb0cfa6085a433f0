"""One event as WebSocket clients receive it: the seed's ``EventMessage``.

Its JSON is ``id, timestamp, event_type, source, node_name, data``.
"""

import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple

from osism.services.notifications import subject_of

# The variant bits of an RFC 4122 UUID (10xx) in the ninth byte's first hex
# digit, for each digit the random bytes gave.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class RandomIds:
    """Random (version 4) UUIDs as text, from ``os.urandom`` ``batch`` at a time.

    ``uuid.uuid4()`` makes a system call for its 16 bytes and a UUID object
    to print them: 2.8 us, about a thirtieth of what the API spent on an
    event at 1,000 events/s. The ids stay unpredictable: an id says what a
    resuming client has seen, and an event whose id was seen is skipped.
    A forked child starts with bytes of its own.
    """

    def __init__(self, batch: int = 256) -> None:
        self.batch = batch
        self._lock = threading.Lock()
        self._hex = ""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._hex):
                self._hex, self._at = os.urandom(16 * self.batch).hex(), 0
            h = self._hex[self._at : self._at + 32]
            self._at += 32
        variant = _VARIANT_DIGIT[h[16]]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"

    def _forget(self) -> None:  # pragma: no cover (runs in a forked child)
        # tests/unit/services/test_event_message.py forks to check it.
        self._hex, self._at = "", 0


class UtcClock:
    """Now in ISO 8601 with a "Z" suffix, the text the seed's
    ``datetime.utcnow().isoformat() + "Z"`` gave (no fraction when the
    microseconds are 0). The date and time of day are formatted once a
    second; ``now_ns`` is the clock (nanoseconds since the epoch)."""

    def __init__(self, now_ns: Any = time.time_ns) -> None:
        self.now_ns = now_ns
        self._second: Tuple[int, str] = (-1, "")

    def __call__(self) -> str:
        second, rest = divmod(self.now_ns(), 1_000_000_000)
        cached = self._second
        if cached[0] != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cached = self._second = (second, text)
        micro = rest // 1000
        return f"{cached[1]}.{micro:06d}Z" if micro else f"{cached[1]}Z"


new_event_id = RandomIds()
utc_now_text = UtcClock()


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
