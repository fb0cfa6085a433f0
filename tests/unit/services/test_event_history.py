"""Unit tests of osism.services.event_history."""

import pytest

from osism.services.event_history import EventHistory
from osism.services.event_message import EventMessage


def event(event_id: str) -> EventMessage:
    return EventMessage("compute.instance.update", "openstack", {}, event_id=event_id)


def ids(entries):
    return [entry.event.id for entry in entries]


def filled(size: int, count: int) -> EventHistory:
    history = EventHistory(size)
    for number in range(1, count + 1):
        history.add(event(f"e{number}"))
    return history


def test_events_get_sequence_numbers_in_order():
    history = EventHistory(10)

    first, second = history.add(event("a")), history.add(event("b"))

    assert (first.seq, second.seq, history.next_seq) == (1, 2, 3)
    assert "a" in history and "b" in history and "c" not in history


def test_the_oldest_goes_once_the_size_is_reached():
    history = filled(3, 5)

    assert len(history) == 3
    assert history.find("e2") is None
    assert "e2" not in history
    kept = history.find("e3")
    assert kept is not None and kept.seq == 3


def test_between_gives_the_entries_after_one_through_another_in_order():
    history = filled(10, 6)

    assert ids(history.between(2, 5)) == ["e3", "e4", "e5"]
    assert ids(history.between(0, 100)) == ["e1", "e2", "e3", "e4", "e5", "e6"]
    assert ids(history.between(6, 100)) == []


def test_between_starts_at_the_oldest_kept_entry():
    history = filled(3, 6)

    assert ids(history.between(1, 6)) == ["e4", "e5", "e6"]


def test_an_empty_history_has_nothing_between():
    assert list(EventHistory(3).between(0, 10)) == []


def test_a_history_needs_a_size():
    with pytest.raises(ValueError, match="an event history needs a size, got 0"):
        EventHistory(0)
