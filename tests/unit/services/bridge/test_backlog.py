"""Unit tests of osism.services.bridge.backlog: events kept for Redis."""

from typing import Any

from osism.services.bridge.backlog import Backlog
from osism.services.event_buffer import EventBuffer
from tests.unit.services.bridge_log_lines import warning


def event(number: int):
    return {"event_type": f"e.{number}", "payload": {}}


def full(size: int):
    return warning(
        f"The Redis buffer is full ({size} events): dropping the oldest until "
        "Redis takes them (REDIS_BUFFER_SIZE)"
    )


def dropped(count: int, size: int):
    return warning(
        f"{count} events were dropped while Redis could not take them "
        f"(the buffer holds {size})"
    )


def kept(*numbers: int) -> Backlog:
    backlog = Backlog(EventBuffer(2))
    for number in numbers:
        backlog.keep(event(number))
    return backlog


class TestOrder:
    def test_events_are_taken_in_the_order_they_were_kept(self):
        backlog = kept(1, 2)

        assert [backlog.take(), backlog.take()] == [event(1), event(2)]
        assert backlog.empty()

    def test_an_event_put_back_is_taken_first_again(self):
        backlog = kept(1, 2)
        first = backlog.take()

        backlog.put_back(first)

        assert (backlog.size(), backlog.take()) == (2, event(1))

    def test_taken_events_are_marked_done(self):
        backlog = kept(1)

        backlog.take()

        assert backlog.buffer.unfinished_tasks == 0

    def test_beyond_the_bound_the_oldest_are_dropped_and_counted(self):
        backlog = kept(1, 2, 3, 4)

        assert [backlog.take(), backlog.take()] == [event(3), event(4)]
        assert backlog.dropped == 2


class TestDropWarnings:
    def test_the_first_drop_of_an_outage_is_warned_about_once(self, bridge_logs):
        backlog = kept(1, 2)
        backlog.warn_once_about_drops()

        for number in (3, 4):
            backlog.keep(event(number))
            backlog.warn_once_about_drops()

        assert bridge_logs() == [full(2)]

    def test_a_report_says_how_many_were_dropped_and_rearms_the_warning(
        self, bridge_logs
    ):
        backlog = kept(1, 2, 3)
        backlog.warn_once_about_drops()

        backlog.report_drops()
        backlog.report_drops()
        backlog.keep(event(4))
        backlog.warn_once_about_drops()

        assert bridge_logs() == [full(2), dropped(1, 2), full(2)]

    def test_a_report_without_drops_says_nothing(self, bridge_logs):
        kept(1).report_drops()

        assert bridge_logs() == []


class TestSettingApart:
    def test_events_are_kept_in_the_new_buffer_and_the_old_ones_stay(self):
        old: Any = EventBuffer(2)
        backlog = Backlog(old)
        backlog.keep(event(1))
        new: Any = EventBuffer(5)

        backlog.set_apart(new)
        backlog.keep(event(2))

        assert list(old.queue) == [event(1)]
        assert list(new.queue) == [event(2)]
        assert backlog.buffer is new

    def test_drop_reports_start_again_with_the_new_buffer(self, bridge_logs):
        backlog = kept(1, 2, 3)
        backlog.report_drops()
        backlog.set_apart(EventBuffer(1))

        backlog.keep(event(4))
        backlog.keep(event(5))
        backlog.warn_once_about_drops()
        backlog.report_drops()

        assert bridge_logs() == [dropped(1, 2), full(1), dropped(1, 1)]
