"""Unit tests of osism.services.bridge.receivers: who received what was
published, and waiting for them after an outage."""

from collections import Counter

import pytest

from osism.services.bridge.receivers import Receivers
from tests.unit.services.bridge_doubles import FakeClock
from tests.unit.services.bridge_log_lines import debug, info

CHANNEL = "osism:events"


def waiting_for(limit: str, listening: int, expected):
    return info(
        f"Waiting up to {limit} s for the Redis subscribers ({listening} of "
        f"{expected} back) before publishing kept events"
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def receivers(clock) -> Receivers:
    return Receivers(
        subscriber_wait=10.0, reconnect_window=6.0, stats=Counter(), clock=clock
    )


@pytest.fixture
def client(fake_redis):
    return fake_redis.client()


class TestKeepingUnreceived:
    def test_a_received_event_is_not_kept_and_its_count_remembered(self, receivers):
        assert receivers.keeps_unreceived(3) is False

        assert (receivers.last_count, receivers.nobody_since) == (3, None)

    def test_unreceived_events_are_kept_until_subscriber_wait_has_passed(
        self, receivers, clock
    ):
        kept = []
        for now in (100.0, 109.99, 110.0):
            clock.now = now
            kept.append(receivers.keeps_unreceived(0))

        assert kept == [True, True, False]
        assert receivers.stats == Counter({"unreceived": 1})
        assert receivers.nobody_since == 100.0

    def test_a_received_event_starts_a_new_period(self, receivers, clock):
        receivers.keeps_unreceived(0)
        clock.now = 200.0
        receivers.keeps_unreceived(1)
        clock.now = 205.0

        assert receivers.keeps_unreceived(0) is True
        assert receivers.nobody_since == 205.0

    def test_without_subscriber_wait_nothing_is_kept(self, clock):
        receivers = Receivers(0.0, 6.0, Counter(), clock)

        assert receivers.keeps_unreceived(0) is False
        assert receivers.stats == Counter({"unreceived": 1})


class TestSubscribersBack:
    def test_without_a_client_nothing_is_held_back(self, receivers, bridge_logs):
        assert receivers.back(None, CHANNEL) is True
        assert bridge_logs() == []

    def test_as_many_as_last_time_are_enough(self, receivers, fake_redis, client):
        receivers.keeps_unreceived(2)
        fake_redis.add_subscribers(CHANNEL, 2)

        assert receivers.back(client, CHANNEL) is True

    def test_too_few_wait_until_subscriber_wait_has_passed(
        self, receivers, fake_redis, client, clock, bridge_logs
    ):
        receivers.keeps_unreceived(2)
        fake_redis.add_subscribers(CHANNEL, 1)
        back = []
        for now in (100.0, 109.99, 110.0):
            clock.now = now
            back.append(receivers.back(client, CHANNEL))

        assert back == [False, False, True]
        assert bridge_logs() == [waiting_for("10", 1, 2)]

    def test_after_waiting_in_vain_it_expects_those_that_came_back(
        self, receivers, fake_redis, client, clock, bridge_logs
    ):
        receivers.keeps_unreceived(2)
        fake_redis.add_subscribers(CHANNEL, 1)
        receivers.back(client, CHANNEL)
        clock.now = 110.0
        receivers.back(client, CHANNEL)

        assert receivers.last_count == 1
        fake_redis.add_subscribers(CHANNEL, -1)
        assert receivers.back(client, CHANNEL) is False
        fake_redis.add_subscribers(CHANNEL, 1)
        assert receivers.back(client, CHANNEL) is True
        assert bridge_logs() == [waiting_for("10", 1, 2), waiting_for("10", 0, 1)]

    def test_once_all_are_back_a_later_shortfall_starts_a_new_wait(
        self, receivers, fake_redis, client, clock, bridge_logs
    ):
        receivers.keeps_unreceived(2)
        fake_redis.add_subscribers(CHANNEL, 1)
        first = receivers.back(client, CHANNEL)
        fake_redis.add_subscribers(CHANNEL, 1)
        second = receivers.back(client, CHANNEL)
        fake_redis.add_subscribers(CHANNEL, -1)
        clock.now = 200.0
        third = receivers.back(client, CHANNEL)

        assert [first, second, third] == [False, True, False]
        assert bridge_logs() == [waiting_for("10", 1, 2)] * 2

    def test_not_knowing_how_many_it_waits_the_reconnect_window(
        self, receivers, fake_redis, client, clock, bridge_logs
    ):
        fake_redis.add_subscribers(CHANNEL, 1)
        back = []
        for now in (100.0, 105.99, 106.0):
            clock.now = now
            back.append(receivers.back(client, CHANNEL))

        assert back == [False, False, True]
        assert bridge_logs() == [waiting_for("6", 1, "unknown")]

    def test_counting_that_fails_holds_nothing_back(
        self, receivers, fake_redis, client, bridge_logs
    ):
        receivers.keeps_unreceived(2)
        fake_redis.fail_next("pubsub_numsub", RuntimeError("unknown command"))

        assert receivers.back(client, CHANNEL) is True
        assert bridge_logs() == [
            debug("Counting the Redis subscribers failed: unknown command")
        ]
