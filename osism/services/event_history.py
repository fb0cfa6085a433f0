"""The recent events an API process fanned out, for clients that resume.

Every event the broadcaster fans out is kept here, in order, up to
EVENT_HISTORY_SIZE, with a sequence number of this process. A client that
lost its connection names the last event it got; the events after it are
found here by that id. An id that is not here (too old, or never seen)
means the client missed something that cannot be replayed: a gap.
"""

from collections import deque
from itertools import islice
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, NamedTuple, Optional

from osism.services.client_frames import gap_frame, resume_frame
from osism.services.event_message import EventMessage


class HistoryEntry(NamedTuple):
    seq: int
    event: EventMessage


class EventHistory:
    """The last ``size`` events, by order and by id."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"an event history needs a size, got {size}")
        self.size = size
        self._entries: Deque[HistoryEntry] = deque()
        self._by_id: Dict[str, HistoryEntry] = {}
        # The sequence number the next event gets; 1 for the first.
        self.next_seq = 1
        # Whether this holds what the Redis history has: False while an API
        # process is to load it or to catch up on it (see resume_wait).
        self.current = True

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._by_id

    def add(self, event: EventMessage) -> HistoryEntry:
        """Keep ``event`` as the newest; the oldest goes once ``size`` are kept."""
        if len(self._entries) >= self.size:
            oldest = self._entries.popleft()
            del self._by_id[oldest.event.id]
        entry = HistoryEntry(self.next_seq, event)
        self.next_seq += 1
        self._entries.append(entry)
        self._by_id[event.id] = entry
        return entry

    def add_older(self, events: Iterable[EventMessage]) -> int:
        """Keep ``events`` (oldest first) as older than every event kept: the
        Redis history, loaded while events may already have come live. They
        get the sequence numbers below the oldest kept, so a client that
        connected before counts them as not sent to it. One kept already, or
        beyond ``size``, is left out; how many were kept."""
        fresh: Dict[str, EventMessage] = {}
        for event in events:
            if event.id not in self._by_id:
                fresh.setdefault(event.id, event)
        room = self.size - len(self._entries)
        older = list(fresh.values())
        kept = older[max(0, len(older) - room) :]
        seq = self._entries[0].seq if self._entries else self.next_seq
        for event in reversed(kept):
            seq -= 1
            entry = HistoryEntry(seq, event)
            self._entries.appendleft(entry)
            self._by_id[event.id] = entry
        return len(kept)

    def find(self, event_id: str) -> Optional[HistoryEntry]:
        return self._by_id.get(event_id)

    def between(self, after_seq: int, through_seq: int) -> Iterator[HistoryEntry]:
        """The entries with ``after_seq < seq <= through_seq``, oldest first."""
        if not self._entries:
            return
        skip = max(0, after_seq + 1 - self._entries[0].seq)
        for entry in islice(self._entries, skip, None):
            if entry.seq > through_seq:
                return
            yield entry


def replay(
    history: EventHistory,
    connection: Any,
    last_event_id: str,
    deliver: Callable[[EventMessage], Any],
) -> Dict[str, Any]:
    """Deliver to ``connection`` the events after ``last_event_id`` that match
    its filters and that it has not been sent; the reply frame.

    ``connection.replay_through`` is the sequence number up to which events
    were not sent live to it (those before it connected), less what replays
    sent since; it moves down as this sends. An id the history does not hold
    (too old, or never seen here) is a gap: nothing is sent, the reply says
    so, and the client goes on with the live stream.
    """
    last = history.find(last_event_id)
    if last is None:
        return gap_frame(
            last_event_id,
            f"the last {len(history)} events do not include {last_event_id!r}; "
            "events before the live stream may be missing",
        )
    replayed = 0
    for entry in history.between(last.seq, connection.replay_through):
        if connection.matches_filters(entry.event):
            deliver(entry.event)
            replayed += 1
    connection.replay_through = min(connection.replay_through, last.seq)
    return resume_frame(replayed)
