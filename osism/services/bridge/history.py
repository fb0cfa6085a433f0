"""The capped Redis stream next to the channel: recent events to catch up on.

Pub/sub delivers a message only to whoever is subscribed at that moment.
Every event published on the channel is also appended to the stream
``<channel>:history`` (``XADD ... MAXLEN ~ EVENT_HISTORY_SIZE``), so that an
API process that starts knows the recent events (a client that resumes after
the API restarted finds its last event), and one whose subscription broke
catches up on what was published meanwhile. The channel stays pub/sub: it is
the contract with the other OSISM components.

Publishing costs one round trip, not two. The XADD goes out on a connection
of its own, held for the purpose, without waiting for its answer; the
PUBLISH follows on the client, as the contract has it; the XADDs' answers
are read later, many at once. The order still holds where it matters: the
XADD is written to Redis before the PUBLISH is sent, so Redis runs it in the
same pass of its event loop at the latest, while a subscriber that missed
the PUBLISH needs a round trip (its SUBSCRIBE answered, then its XREVRANGE)
before it reads the stream. Waiting for each XADD's answer first cost about
40 % of the publish rate. An answer left unread costs Redis a few bytes of
output buffer; a failed XADD is known late, and only a warning then (the
event itself reached the channel).
"""

import json
import logging
import threading
from typing import Any, List, Optional, Tuple

from osism.services.bridge import wire
from osism.services.bridge.wire import Event

# Entries read back per XREVRANGE call while looking for an event.
PAGE = 200
FIELD = "event"
# XADD answers read together, after this many events (see above).
ANSWERS_READ_TOGETHER = 64

logger = logging.getLogger(__name__)


def stream_key(channel: str) -> str:
    return f"{channel}:history"


class RedisHistory:
    """The stream of at most about ``size`` events; ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        # The connection the XADDs go out on, the client it is from, and how
        # many of its answers are still to be read.
        self._client: Any = None
        self._connection: Any = None
        self._unread = 0

    def publish(self, client: Any, channel: str, message: str) -> int:
        """Keep ``message`` and publish it; how many subscribers received it.

        Raises what publishing raises. An XADD that Redis refused once the
        event was published is a warning: the event reached the channel,
        only the history may lack it.
        """
        if not self.size:
            return int(client.publish(channel, message))
        with self._lock:
            connection = self._connection_to(client)
            try:
                # No health check: its PING would read an XADD's answer.
                connection.send_command(
                    "XADD",
                    stream_key(channel),
                    "MAXLEN",
                    "~",
                    self.size,
                    "*",
                    FIELD,
                    message,
                    check_health=False,
                )
                receivers = int(client.publish(channel, message))
            except Exception:
                self._drop_connection()
                raise
            self._unread += 1
            if self._unread >= ANSWERS_READ_TOGETHER:
                self._read_answers(channel)
            return receivers

    def _read_answers(self, channel: str) -> None:
        """Read the XADDs' answers, all there by now: one ``recv`` for many."""
        try:
            while self._unread:
                self._connection.read_response()
                self._unread -= 1
        except Exception as e:
            logger.warning(
                "The Redis history may lack up to %d of the events last "
                "published on %s: %s",
                self._unread,
                channel,
                e,
            )
            self._drop_connection()

    def _connection_to(self, client: Any) -> Any:
        if self._client is not client:
            self._drop_connection()
            self._connection = client.connection_pool.get_connection()
            self._client = client
        return self._connection

    def _drop_connection(self) -> None:
        """Close the held connection: answers may be left unread on it."""
        if self._connection is not None:
            self._connection.disconnect()
        self._client = self._connection = None
        self._unread = 0

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
