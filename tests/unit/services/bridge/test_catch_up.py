"""Unit tests of osism.services.bridge.catch_up: what an API process takes
from the Redis history after subscribing."""

import json
from collections import Counter
from typing import Any, List

import pytest

from osism.services.bridge.catch_up import CatchUp
from osism.services.bridge.history import RedisHistory
from osism.services.bridge.link import RedisLink
from tests.unit.services.bridge_log_lines import info, warning

CHANNEL = "osism:events"


def event(number: int) -> dict:
    return {"event_type": "x.y", "payload": {}, "id": f"e{number}"}


class Remembering:
    """The hand-over as catching up sees it: a manager, what it was told to
    remember, and whether its history was marked current (True) or not."""

    def __init__(self) -> None:
        self.manager: Any = object()
        self.remembered: List[Any] = []
        self.marks: List[bool] = []

    def remember(self, events: List[Any]) -> None:
        self.remembered.append(events)

    def mark_history(self, current: bool) -> None:
        self.marks.append(current)


class Side:
    def __init__(self, fake_redis: Any, size: int = 10) -> None:
        self.link = RedisLink("redis", 6379, 0, CHANNEL, 5.0, True)
        self.link.connect(serving=True)
        self.history = RedisHistory(size)
        self.handover = Remembering()
        self.delivered: List[Any] = []
        self.stats: "Counter[str]" = Counter()
        self.catch_up = CatchUp(
            self.history,
            self.link,
            self.handover,
            self.delivered.append,
            self.stats,
        )
        self.publisher = fake_redis.client()

    def publish(self, *numbers: int) -> None:
        for number in numbers:
            self.history.publish(self.publisher, CHANNEL, json.dumps(event(number)))


@pytest.fixture
def side(fake_redis, bridge_logs, caplog):
    made = Side(fake_redis)
    caplog.clear()
    return made


def test_the_first_subscribe_remembers_the_history_without_delivering(
    side, bridge_logs
):
    side.publish(1, 2)

    side.catch_up.after_subscribing()

    assert side.handover.remembered == [[event(1), event(2)]]
    assert side.handover.marks == [True]
    assert side.delivered == []
    assert side.catch_up.last_delivered == "e2"
    assert bridge_logs() == [info("Loaded the 2 recent events of the Redis history")]


def test_an_empty_history_is_loaded_quietly(side, bridge_logs):
    side.catch_up.after_subscribing()

    assert side.handover.remembered == [[]]
    assert bridge_logs() == []


def test_a_later_subscribe_delivers_what_was_published_meanwhile(side, bridge_logs):
    side.publish(1)
    side.catch_up.after_subscribing()
    side.catch_up.delivered(event(1))
    side.publish(2, 3)

    side.catch_up.after_subscribing()

    assert side.delivered == [event(2), event(3)]
    assert side.handover.marks == [True, True]
    assert side.stats["caught_up"] == 2
    assert bridge_logs()[-1] == info(
        "Caught up on 2 events published while the subscription was down"
    )


def test_nothing_missed_is_nothing_delivered(side, bridge_logs):
    side.publish(1)
    side.catch_up.after_subscribing()

    side.catch_up.after_subscribing()

    assert side.delivered == []
    assert bridge_logs() == [info("Loaded the 1 recent events of the Redis history")]


def test_an_event_no_longer_in_the_history_is_a_warned_gap(fake_redis, bridge_logs):
    side = Side(fake_redis, size=2)
    side.catch_up.after_subscribing()
    side.catch_up.delivered(event(1))
    side.publish(2, 3, 4)

    side.catch_up.after_subscribing()

    assert side.delivered == [event(3), event(4)]
    assert bridge_logs()[-1] == warning(
        "Event 'e1' is no longer in the Redis history: events published before "
        "these 2 may be missing (EVENT_HISTORY_SIZE)"
    )


def test_without_a_delivered_id_there_is_nothing_to_catch_up_from(side):
    side.catch_up.loaded = True
    side.publish(1)

    side.catch_up.after_subscribing()

    assert side.delivered == []


def test_an_event_without_id_leaves_the_last_one(side):
    side.catch_up.delivered(event(1))
    side.catch_up.delivered({"event_type": "x.y", "payload": {}})

    assert side.catch_up.last_delivered == "e1"


@pytest.mark.parametrize(
    "change, marks",
    [
        pytest.param(
            lambda side: setattr(side.handover, "manager", None),
            [],
            id="no-manager",
        ),
        pytest.param(
            lambda side: setattr(side.history, "size", 0), [], id="no-history"
        ),
        # Nothing to load from: resumes are answered with what is there.
        pytest.param(
            lambda side: setattr(side.link, "client", None), [True], id="no-redis"
        ),
    ],
)
def test_a_publisher_no_history_or_no_redis_takes_nothing(side, change, marks):
    side.publish(1)
    change(side)

    side.catch_up.after_subscribing()

    assert side.handover.remembered == []
    assert side.handover.marks == marks
    assert not side.catch_up.loaded


def test_pending_marks_the_history_not_current_until_subscribed(side):
    side.catch_up.pending()
    side.catch_up.after_subscribing()

    assert side.handover.marks == [False, True]


def test_without_a_history_there_is_nothing_to_wait_for(side):
    side.history.size = 0

    side.catch_up.pending()

    assert side.handover.marks == []


def test_a_failure_is_a_warning_and_the_subscriber_goes_on(
    side, fake_redis, bridge_logs
):
    fake_redis.fail_next("xrevrange", ConnectionError("reset"))

    side.catch_up.after_subscribing()

    assert bridge_logs() == [
        warning("Catching up from the Redis history failed: reset")
    ]
    assert not side.catch_up.loaded
    # Failed: resumes do not wait for what cannot come; the next subscribe
    # loads it.
    assert side.handover.marks == [True]
