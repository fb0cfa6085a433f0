"""Unit tests of osism.services.event_history."""

import json
from types import SimpleNamespace
from typing import List

import pytest

from osism.services.event_history import (
    DEFAULT_MAX_BYTES,
    MAX_VALUES,
    SCALAR_BYTES,
    EventHistory,
    event_size,
    json_size,
    replay,
)
from osism.services.event_message import EventMessage
from osism.settings import Settings


def event(event_id: str, blob: str = "") -> EventMessage:
    data = {"blob": blob} if blob else {}
    return EventMessage("compute.instance.update", "openstack", data, event_id=event_id)


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


# --------------------------------------------------------------------------
# Bounded by bytes (EVENT_HISTORY_MAX_BYTES)

KIB = 1024


def big(event_id: str, kib: int = 100) -> EventMessage:
    return event(event_id, "x" * (kib * KIB))


def test_the_default_bound_is_the_settings_default():
    assert EventHistory(10).max_bytes == DEFAULT_MAX_BYTES == 16 * 1024 * KIB


def test_the_oldest_go_once_the_bytes_are_reached_before_the_count():
    history = EventHistory(1000, max_bytes=350 * KIB)
    for number in range(1, 6):
        history.add(big(f"e{number}"))

    # Three events of a little over 100 KiB fit in 350 KiB, four do not.
    assert ids(history.between(0, 100)) == ["e3", "e4", "e5"]
    assert "e2" not in history
    assert 300 * KIB < history.nbytes <= 350 * KIB
    assert history.nbytes == sum(
        event_size(entry.event) for entry in history.between(0, 100)
    )


def test_the_count_still_bounds_small_events():
    history = EventHistory(2, max_bytes=350 * KIB)
    for number in range(1, 4):
        history.add(event(f"e{number}"))

    assert ids(history.between(0, 100)) == ["e2", "e3"]


def test_the_newest_stays_alone_even_beyond_the_bytes():
    """The history also tells the broadcaster what was sent already."""
    history = EventHistory(10, max_bytes=50 * KIB)
    history.add(event("small"))
    history.add(big("large"))

    assert ids(history.between(0, 100)) == ["large"]
    assert history.nbytes > history.max_bytes


def test_sequence_numbers_go_on_after_events_went_by_bytes():
    history = EventHistory(10, max_bytes=150 * KIB)
    history.add(big("e1"))
    entry = history.add(big("e2"))

    assert (entry.seq, history.next_seq, len(history)) == (2, 3, 1)
    assert ids(history.between(0, 100)) == ["e2"]


def resuming_client() -> SimpleNamespace:
    return SimpleNamespace(replay_through=100, matches_filters=lambda event: True)


def test_an_event_gone_by_bytes_is_a_gap_for_a_client_that_resumes():
    history = EventHistory(1000, max_bytes=250 * KIB)
    for number in range(1, 5):
        history.add(big(f"e{number}"))
    delivered: List[EventMessage] = []

    gone = replay(history, resuming_client(), "e1", delivered.append)
    kept = replay(history, resuming_client(), "e3", delivered.append)

    assert gone["type"] == "gap" and "the last 2 events" in gone["message"]
    assert kept == {"type": "resume", "status": "success", "replayed": 1}
    assert [e.id for e in delivered] == ["e4"]


def test_lowered_bounds_apply_to_what_is_kept():
    history = EventHistory(10, max_bytes=DEFAULT_MAX_BYTES)
    for number in range(1, 6):
        history.add(big(f"e{number}"))

    history.apply_settings(
        Settings(event_history_size=4, event_history_max_bytes=250 * KIB)
    )

    assert (history.size, history.max_bytes) == (4, 250 * KIB)
    assert ids(history.between(0, 100)) == ["e4", "e5"]
    history.limit(1, DEFAULT_MAX_BYTES)
    assert ids(history.between(0, 100)) == ["e5"]


def test_a_history_needs_bytes():
    with pytest.raises(ValueError, match="an event history needs bytes, got 0"):
        EventHistory(10, max_bytes=0)


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        {"a": "b", "list": [1, 2.5, True, None, "x"], "nested": {"k": []}},
        ["ünïcode", {"deep": [{"deeper": "value"}]}],
        {},
        [],
    ],
)
def test_the_json_size_is_about_the_length_of_the_json(value):
    exact = len(json.dumps(value, ensure_ascii=False))

    assert exact - 8 <= json_size(value) <= exact + 8 * 10


def test_the_json_size_counts_a_tuple_like_a_list_and_other_values_as_scalars():
    assert json_size(("ab", object())) == json_size(["ab", 1]) == 2 + 2 + 4 + 8


def test_an_events_size_is_about_the_length_of_its_json():
    for sample in (event("e1"), big("e2", 10), EventMessage("x", "y", {}, "node")):
        exact = len(sample.to_json())

        assert exact - 20 <= event_size(sample) <= exact + 100


def test_the_json_size_of_a_structure_that_contains_itself_is_bounded():
    looped: List[object] = []
    looped.append(looped)

    assert json_size(looped) == MAX_VALUES * 3
    # A list and MAX_VALUES - 1 numbers: every value counted.
    values = MAX_VALUES - 1
    assert json_size([0] * values) == 2 + values + values * SCALAR_BYTES


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


def test_older_events_beyond_the_bytes_are_the_first_to_go():
    history = EventHistory(1000, max_bytes=350 * KIB)
    history.add(big("e1"))
    history.add(big("e2"))

    history.add_older([big("r1"), big("r2")])

    # Room for three: the newest loaded stays, the oldest goes.
    assert ids(history.between(-100, 100)) == ["r2", "e1", "e2"]
    assert "r1" not in history
    assert history.nbytes <= 350 * KIB
