"""Unit tests of osism.services.event_history."""

import pytest

from osism.services.event_history import EventHistory
from osism.services.event_message import EventMessage


def event(event_id: str) -> EventMessage:
    return EventMessage("compute.instance.update", "openstack", {}, event_id=event_id)


def ids(entries):
    return [entry.event.id for entry in entries]


def seq(history: EventHistory, event_id: str) -> int:
    entry = history.find(event_id)
    assert entry is not None
    return entry.seq


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


class TestAddOlder:
    """The Redis history loaded after events came live: kept as older."""

    def test_older_events_go_before_the_kept_ones_numbered_below_them(self):
        history = filled(10, 2)

        kept = history.add_older([event("r1"), event("r2")])

        assert kept == 2
        assert ids(history.between(-100, 100)) == ["r1", "r2", "e1", "e2"]
        assert [seq(history, i) for i in ("r1", "r2")] == [-1, 0]
        assert history.next_seq == 3

    def test_into_an_empty_history_below_the_next_number(self):
        history = EventHistory(10)

        history.add_older([event("r1"), event("r2")])
        live = history.add(event("e1"))

        assert ids(history.between(-100, 100)) == ["r1", "r2", "e1"]
        assert live.seq == 1
        assert ids(history.between(seq(history, "r1"), 0)) == ["r2"]

    def test_those_kept_already_or_given_twice_are_left_out(self):
        history = filled(10, 2)

        kept = history.add_older([event("r1"), event("e1"), event("r1"), event("r2")])

        assert kept == 2
        assert ids(history.between(-100, 100)) == ["r1", "r2", "e1", "e2"]

    def test_only_the_newest_that_fit_are_kept(self):
        history = filled(4, 2)

        kept = history.add_older([event("r1"), event("r2"), event("r3")])

        assert kept == 2
        assert ids(history.between(-100, 100)) == ["r2", "r3", "e1", "e2"]
        assert "r1" not in history

    def test_a_full_history_keeps_nothing_older(self):
        history = filled(2, 2)

        assert history.add_older([event("r1")]) == 0
        assert ids(history.between(-100, 100)) == ["e1", "e2"]


def test_a_history_is_current_until_told_otherwise():
    assert EventHistory(3).current is True
