"""Unit tests of osism.services.safe_handover: acknowledged only what Redis
took, held in order meanwhile."""

import logging
from collections import Counter
from typing import Any, List

import pytest

from osism.services.retry import Backoff
from osism.services.safe_handover import SafeHandover

LOGGER = "osism.listener"


class Message:
    """What the hand-over does with a kombu message."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "UNACKED"

    def ack(self) -> None:
        self.state = "ACK"

    def requeue(self) -> None:
        self.state = "REQUEUED"

    def reject(self, requeue: bool) -> None:
        self.state = "REQUEUED" if requeue else "REJECTED"


class Redis:
    """The bridge's publish_now: takes events while up."""

    def __init__(self) -> None:
        self.up = True
        self.published: List[Any] = []

    def publish_now(self, event: Any) -> bool:
        if isinstance(event.get("payload"), Exception):
            raise event["payload"]
        if self.up:
            self.published.append(event["event_type"])
        return self.up


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis():
    return Redis()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def handover(redis, clock):
    return SafeHandover(redis, Backoff(1.0, 4.0), Counter(), clock)


def event(name: str, payload: Any = None) -> Any:
    return {"event_type": name, "payload": payload or {}}


def offer(handover: SafeHandover, *names: str) -> List[Message]:
    messages = [Message(name) for name in names]
    for message in messages:
        handover.offer(message, event(message.name))
    return messages


def test_what_redis_takes_is_acknowledged(handover, redis):
    messages = offer(handover, "a", "b")

    assert [m.state for m in messages] == ["ACK", "ACK"]
    assert redis.published == ["a", "b"]
    assert handover.stats["handed_over"] == 2


def test_while_redis_refuses_notifications_are_held_in_order(handover, redis, caplog):
    caplog.set_level(logging.INFO, LOGGER)
    redis.up = False

    messages = offer(handover, "a", "b", "c")

    assert [m.state for m in messages] == ["UNACKED"] * 3
    assert handover.held == 3
    assert handover.stats["held"] == 1
    # Said once, when holding begins.
    assert [r.message for r in caplog.records] == [
        "Redis cannot take events: holding 1 notifications unacknowledged, "
        "RabbitMQ keeps the rest until Redis is back"
    ]


def test_retries_follow_the_back_off_and_publish_in_order_once_back(
    handover, redis, clock, caplog
):
    caplog.set_level(logging.INFO, LOGGER)
    redis.up = False
    messages = offer(handover, "a", "b")
    tried: List[float] = []
    publish_now = redis.publish_now

    def recording(e: Any) -> bool:
        tried.append(clock.now)
        return publish_now(e)

    redis.publish_now = recording
    for now in (100.5, 101.0, 102.0, 102.9, 103.0):
        clock.now = now
        handover.retry_when_due()
    assert tried == [101.0, 103.0]
    redis.up = True
    clock.now = 107.0

    handover.retry_when_due()

    assert [m.state for m in messages] == ["ACK", "ACK"]
    assert redis.published == ["a", "b"]
    assert caplog.records[-1].message == (
        "Redis takes events again: published 2 held notifications"
    )
    assert handover.held == 0


def test_nothing_held_is_nothing_to_retry(handover, redis):
    handover.retry_when_due()

    assert redis.published == []


def test_a_notification_that_can_never_be_published_is_rejected(handover, redis):
    bad = Message("bad")

    handover.offer(bad, event("bad", ValueError("not JSON")))
    [good] = offer(handover, "good")

    assert (bad.state, good.state) == ("REJECTED", "ACK")
    assert handover.stats["unpublishable"] == 1


def test_giving_back_requeues_what_is_held(handover, redis):
    redis.up = False
    messages = offer(handover, "a", "b")

    assert handover.give_back() == 2

    assert [m.state for m in messages] == ["REQUEUED", "REQUEUED"]
    assert handover.held == 0
    redis.up = True
    [fresh] = offer(handover, "c")
    assert fresh.state == "ACK"


def test_forgetting_drops_what_is_held_without_a_word(handover, redis):
    redis.up = False
    [message] = offer(handover, "a")

    handover.forget()

    assert message.state == "UNACKED"
    assert handover.held == 0


def test_every_notification_that_can_never_be_published_is_counted(handover, redis):
    bad = [Message("bad1"), Message("bad2")]

    for message in bad:
        handover.offer(message, event(message.name, ValueError("not JSON")))

    assert [m.state for m in bad] == ["REJECTED", "REJECTED"]
    assert handover.stats["unpublishable"] == 2


def test_one_unpublishable_among_held_ones_does_not_stop_the_rest(handover, redis):
    redis.up = False
    first = Message("first")
    bad = Message("bad")
    last = Message("last")
    handover.offer(first, event("first"))
    handover.offer(bad, event("bad", ValueError("not JSON")))
    handover.offer(last, event("last"))
    redis.up = True
    handover.clock.now = 200.0

    handover.retry_when_due()

    assert [m.state for m in (first, bad, last)] == ["ACK", "REJECTED", "ACK"]
    assert redis.published == ["first", "last"]
    assert handover.held == 0


def test_once_redis_is_back_a_new_notification_is_acknowledged_at_once(
    handover, redis, clock
):
    redis.up = False
    offer(handover, "a")
    redis.up = True
    clock.now = 200.0
    handover.retry_when_due()

    [fresh] = offer(handover, "b")

    assert fresh.state == "ACK"
    assert redis.published == ["a", "b"]


def test_each_hand_over_is_logged_at_debug_level(handover, caplog):
    caplog.set_level(logging.DEBUG, LOGGER)

    offer(handover, "compute.instance.update", "baremetal.node.update.end")

    assert caplog.messages == [
        "Handed 'compute.instance.update' to Redis",
        "Handed 'baremetal.node.update.end' to Redis",
    ]
