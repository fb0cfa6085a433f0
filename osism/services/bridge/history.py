"""The capped Redis stream next to the channel: recent events to catch up on.

Pub/sub delivers a message only to whoever is subscribed at that moment.
Every event published on the channel is also appended to the stream
``<channel>:history`` (``XADD ... MAXLEN ~ EVENT_HISTORY_SIZE``), so that an
API process that starts knows the recent events (a client that resumes after
the API restarted finds its last event), and one whose subscription broke
catches up on what was published meanwhile. The channel stays pub/sub: it is
the contract with the other OSISM components.

Publishing costs one round trip, not two: the XADD goes to Redis in the
same write as the PUBLISH, just before it, its answer skipped
(``history_packer.py``). The first of every ``ANSWERED_EVERY`` events, and
every event of a client the bridge did not make or whose Redis user may not
send CLIENT REPLY, has its XADD sent apart and answered instead, so that a
Redis that refuses XADDs (out of memory, the key not a stream) shows in the
log; the event is published all the same.
"""

import json
import logging
from typing import Any, List, Optional, Tuple

from osism.services.bridge import wire
from osism.services.bridge.history_packer import HistoryPacker
from osism.services.bridge.wire import Event

# Entries read back per XREVRANGE call while looking for an event.
PAGE = 200
FIELD = "event"
# Every this many events, the XADD is answered (see above).
ANSWERED_EVERY = 64

logger = logging.getLogger(__name__)


def stream_key(channel: str) -> str:
    return f"{channel}:history"


class RedisHistory:
    """The stream of at most about ``size`` events; ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._published = 0
        self._refused = False
        # The client last asked whether its Redis user may send CLIENT
        # REPLY, and the answer (see _may_skip_answers).
        self._asked: Any = None
        self._may_skip = False

    def publish(self, client: Any, channel: str, message: str) -> int:
        """Keep ``message`` and publish it; how many subscribers received it.

        Raises what publishing raises; a refused XADD is only a warning."""
        if not self.size:
            return int(client.publish(channel, message))
        answered = self._published % ANSWERED_EVERY == 0
        self._published += 1
        if not answered and self._may_skip_answers(client):
            return self._publish_carrying_xadd(client, channel, message)
        self._append(client, channel, message)
        return int(client.publish(channel, message))

    def _publish_carrying_xadd(self, client: Any, channel: str, message: str) -> int:
        """Publish with the XADD packed in front (history_packer.py)."""
        pool = client.connection_pool
        xadd = (stream_key(channel), "MAXLEN", "~", self.size, "*", FIELD, message)
        with pool.connection_kwargs["command_packer"].ahead_of(
            channel, message, *xadd
        ) as staged:
            try:
                receivers = int(client.publish(channel, message))
            except Exception:
                # What was written may have left answers unread on the
                # connection: none is used again, and the user is asked
                # again (its rights may have changed).
                pool.disconnect(inuse_connections=False)
                self._asked = None
                raise
        if not staged.sent:
            # A client whose connections do not pack with the packer (a
            # stand-in for redis-py): late rather than never.
            logger.warning(
                "The Redis client does not pack its commands with the "
                "history's packer; each XADD is sent apart from now on"
            )
            self._may_skip = False
            self._append(client, channel, message)
        return receivers

    def _may_skip_answers(self, client: Any) -> bool:
        """Whether ``client``'s connections carry the XADD with the PUBLISH:
        the bridge made it, and its Redis user may send CLIENT REPLY (an ACL
        can forbid it; then the skip would be refused and the answers would
        get out of step). Asked once per client with CLIENT REPLY ON, which
        changes nothing."""
        packer = client.connection_pool.connection_kwargs.get("command_packer")
        if not isinstance(packer, HistoryPacker):
            return False
        if self._asked is not client:
            try:
                client.execute_command("CLIENT", "REPLY", "ON")
            except Exception as e:
                if not _refused_by_redis(e):
                    raise
                logger.warning(
                    "The Redis user may not send CLIENT REPLY, so each "
                    "event's XADD to the history costs a round trip of its "
                    "own: %s",
                    e,
                )
                self._may_skip = False
            else:
                self._may_skip = True
            self._asked = client
        return self._may_skip

    def _append(self, client: Any, channel: str, message: str) -> None:
        """XADD ``message``, answered; say when Redis starts or stops
        refusing it."""
        try:
            client.xadd(
                stream_key(channel),
                {FIELD: message},
                maxlen=self.size,
                approximate=True,
            )
        except Exception as e:
            if not _refused_by_redis(e):
                raise
            if not self._refused:
                logger.warning(
                    "Redis refused to keep an event in the history of %s, "
                    "which lacks events until it takes them again: %s",
                    channel,
                    e,
                )
            self._refused = True
        else:
            if self._refused:
                logger.info(
                    "Redis keeps the events in the history of %s again", channel
                )
            self._refused = False

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


def _refused_by_redis(error: Exception) -> bool:
    """Whether Redis answered with an error (the link itself is fine)."""
    from redis.exceptions import ResponseError

    return isinstance(error, ResponseError)


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
