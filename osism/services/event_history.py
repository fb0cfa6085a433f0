"""The recent events an API process fanned out, for clients that resume.

Every event the broadcaster fans out is kept here, in order, with a sequence
number of this process: at most EVENT_HISTORY_SIZE events of together at
most about EVENT_HISTORY_MAX_BYTES (the size of their JSON); the oldest go
when either bound is reached, the newest stays even alone beyond the bytes.
A client that lost its connection names the last event it got; the events
after it are found here by that id. An id that is not here (too old, or
never seen) means the client missed something that cannot be replayed: a
gap, whichever bound made it go.
"""

from collections import deque
from itertools import islice
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, NamedTuple, Optional

from osism.services.client_frames import gap_frame, resume_frame
from osism.services.event_message import EventMessage
from osism.settings import Settings

DEFAULT_MAX_BYTES = Settings.model_construct().event_history_max_bytes
# What an event's JSON has besides its data, about (keys, id, timestamp).
EVENT_OVERHEAD = 100
# A number, true, false or null in JSON, about.
SCALAR_BYTES = 8
# Values json_size looks at, at most: more than an event of MAX_EVENT_BYTES
# can hold.
MAX_VALUES = 1_000_000


class HistoryEntry(NamedTuple):
    seq: int
    event: EventMessage
    nbytes: int = 0


def json_size(value: Any) -> int:
    """About the length of ``value`` as JSON: its strings' lengths, their
    quotes and the separators; each number or literal counts SCALAR_BYTES.
    A walk rather than ``json.dumps``: it does not copy or escape the
    strings, so an event of a megabyte costs as little as a small one with
    as many values (a few microseconds for a nova instance notification).
    It stops after MAX_VALUES values: a structure that contains itself
    (never JSON, only a caller's own object) does not hang the loop."""
    size = 0
    pending = [value]
    for _ in range(MAX_VALUES):
        if not pending:
            break
        item = pending.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + 2 * len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 2 + len(item)
            pending.extend(item)
        else:
            size += SCALAR_BYTES
    return size


def event_size(event: EventMessage) -> int:
    """About the length of ``event``'s JSON, what the history counts."""
    fields = (event.id, event.timestamp, event.event_type, event.source)
    return EVENT_OVERHEAD + json_size((*fields, event.node_name, event.data))


class EventHistory:
    """The last ``size`` events of together about ``max_bytes`` at most, by
    order and by id."""

    def __init__(self, size: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._entries: Deque[HistoryEntry] = deque()
        self._by_id: Dict[str, HistoryEntry] = {}
        # The sum of the entries' nbytes.
        self.nbytes = 0
        self.limit(size, max_bytes)
        # The sequence number the next event gets; 1 for the first.
        self.next_seq = 1
        # Whether this holds what the Redis history has: False while an API
        # process is to load it or to catch up on it (see resume_wait).
        self.current = True

    def limit(self, size: int, max_bytes: int) -> None:
        """Bound the history to ``size`` events and ``max_bytes``; the
        oldest go at once if it holds more."""
        if size <= 0:
            raise ValueError(f"an event history needs a size, got {size}")
        if max_bytes <= 0:
            raise ValueError(f"an event history needs bytes, got {max_bytes}")
        self.size = size
        self.max_bytes = max_bytes
        self._forget_beyond_bounds()

    def apply_settings(self, settings: Settings) -> None:
        """EVENT_HISTORY_SIZE and EVENT_HISTORY_MAX_BYTES of ``settings``."""
        self.limit(settings.event_history_size, settings.event_history_max_bytes)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._by_id

    def add(self, event: EventMessage, nbytes: Optional[int] = None) -> HistoryEntry:
        """Keep ``event`` as the newest; the oldest go while more than
        ``size`` events or ``max_bytes`` are kept. ``nbytes``: the length of
        its JSON, where the caller has it (else about that, event_size).

        The newest stays even if it alone is larger than ``max_bytes``: the
        history is also how the broadcaster knows an event was sent already.
        """
        if nbytes is None:
            nbytes = event_size(event)
        entry = HistoryEntry(self.next_seq, event, nbytes)
        self.next_seq += 1
        self._entries.append(entry)
        self._by_id[event.id] = entry
        self.nbytes += entry.nbytes
        self._forget_beyond_bounds()
        return entry

    def _forget_beyond_bounds(self) -> None:
        entries = self._entries
        while len(entries) > self.size or (
            self.nbytes > self.max_bytes and len(entries) > 1
        ):
            oldest = entries.popleft()
            del self._by_id[oldest.event.id]
            self.nbytes -= oldest.nbytes

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
            entry = HistoryEntry(seq, event, event_size(event))
            self._entries.appendleft(entry)
            self._by_id[event.id] = entry
            self.nbytes += entry.nbytes
        # The bytes bound takes the oldest first: these.
        self._forget_beyond_bounds()
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
