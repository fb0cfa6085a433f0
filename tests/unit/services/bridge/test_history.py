"""Unit tests of osism.services.bridge.history: the Redis stream next to the
channel, on the fake Redis."""

import json
import logging

import pytest
from redis.exceptions import ResponseError

from osism.services.bridge import history as history_module
from osism.services.bridge.history import RedisHistory, stream_key
from osism.services.bridge.history_packer import HistoryPacker

CHANNEL = "osism:events"
KEY = "osism:events:history"


def event(number: int) -> dict:
    return {"event_type": "x.y", "payload": {}, "id": f"e{number}"}


@pytest.fixture
def client(fake_redis):
    return fake_redis.client()


def fill(history, client, count):
    for number in range(1, count + 1):
        history.publish(client, CHANNEL, json.dumps(event(number)))


def ids(events):
    return [e["id"] for e in events]


def test_the_stream_is_named_after_the_channel():
    assert stream_key("osism:events:it:1") == "osism:events:it:1:history"


def test_publishing_keeps_the_event_and_publishes_it(fake_redis, client):
    fake_redis.add_subscribers(CHANNEL, 2)

    receivers = RedisHistory(10).publish(client, CHANNEL, json.dumps(event(1)))

    assert receivers == 2
    assert fake_redis.stream_events(KEY) == [event(1)]
    assert fake_redis.messages(CHANNEL) == [event(1)]


def test_the_stream_is_capped(fake_redis, client):
    fill(RedisHistory(3), client, 5)

    assert ids(fake_redis.stream_events(KEY)) == ["e3", "e4", "e5"]


def test_the_stream_is_trimmed_approximately(fake_redis, client):
    # MAXLEN ~: Redis trims whole nodes of the stream, cheap on every event,
    # rather than exactly (which costs on every XADD).
    fill(RedisHistory(3), client, 2)

    assert fake_redis.trims == [(KEY, 3, True), (KEY, 3, True)]


def test_a_history_of_size_0_keeps_nothing(fake_redis, client):
    history = RedisHistory(0)
    fill(history, client, 2)

    assert KEY not in fake_redis.streams
    assert history.newest(client, CHANNEL) == []
    assert history.since(client, CHANNEL, "e1") == ([], False)


def test_newest_gives_the_stream_oldest_first(client):
    history = RedisHistory(10)
    fill(history, client, 3)

    assert ids(history.newest(client, CHANNEL)) == ["e1", "e2", "e3"]


def test_since_gives_the_events_after_one(client):
    history = RedisHistory(10)
    fill(history, client, 5)

    events, found = history.since(client, CHANNEL, "e2")

    assert (ids(events), found) == (["e3", "e4", "e5"], True)


def test_since_the_newest_is_nothing(client):
    history = RedisHistory(10)
    fill(history, client, 2)

    assert history.since(client, CHANNEL, "e2") == ([], True)


def test_since_an_event_no_longer_kept_gives_all_there_is(client):
    history = RedisHistory(3)
    fill(history, client, 5)

    events, found = history.since(client, CHANNEL, "e1")

    assert (ids(events), found) == (["e3", "e4", "e5"], False)


@pytest.mark.parametrize("page", [2, 3])
def test_since_reads_page_by_page(client, monkeypatch, page):
    monkeypatch.setattr(history_module, "PAGE", page)
    history = RedisHistory(100)
    fill(history, client, 7)

    assert history.since(client, CHANNEL, "e2") == (
        [event(n) for n in range(3, 8)],
        True,
    )
    assert history.since(client, CHANNEL, "nope")[0] == [event(n) for n in range(1, 8)]


def test_a_smaller_history_reads_no_more_than_its_size(client, monkeypatch):
    """EVENT_HISTORY_SIZE lowered: the stream still holds what a larger
    history kept (until the next XADD trims it)."""
    monkeypatch.setattr(history_module, "PAGE", 2)
    fill(RedisHistory(100), client, 7)
    smaller = RedisHistory(4)

    assert ids(smaller.newest(client, CHANNEL)) == ["e4", "e5", "e6", "e7"]
    events, found = smaller.since(client, CHANNEL, "e1")
    assert (ids(events), found) == (["e4", "e5", "e6", "e7"], False)


def test_entries_that_are_not_events_are_left_out(fake_redis, client):
    history = RedisHistory(10)
    fill(history, client, 1)
    client.xadd(KEY, {"event": "not json"})
    client.xadd(KEY, {"other": "field"})
    client.xadd(KEY, {"event": json.dumps([1])})
    fill_more = json.dumps(event(2))
    history.publish(client, CHANNEL, fill_more)

    assert ids(history.newest(client, CHANNEL)) == ["e1", "e2"]
    assert history.since(client, CHANNEL, "e1") == ([event(2)], True)


def test_a_client_that_answers_oddly_gives_nothing():
    class Odd:
        def xrevrange(self, *args, **kwargs):
            return None

    assert RedisHistory(10).newest(Odd(), CHANNEL) == []
    assert RedisHistory(10).since(Odd(), CHANNEL, "e1") == ([], False)


@pytest.fixture
def packed_client(fake_redis):
    """A client as the bridge makes it: its XADDs ride with the PUBLISH."""
    client = fake_redis.client()
    client.connection_pool.connection_kwargs["command_packer"] = HistoryPacker()
    return client


@pytest.fixture
def xadds(monkeypatch, packed_client):
    """The XADDs sent apart and answered, rather than with a PUBLISH."""
    calls = []
    answered = packed_client.xadd

    def xadd(*args, **kwargs):
        calls.append(args)
        return answered(*args, **kwargs)

    monkeypatch.setattr(packed_client, "xadd", xadd)
    return calls


@pytest.mark.parametrize("made", ["client", "packed_client"])
def test_the_event_is_in_the_stream_before_it_is_published(fake_redis, request, made):
    """A subscriber that missed the PUBLISH finds the event in the stream."""
    client = request.getfixturevalue(made)
    fake_redis.add_subscribers(CHANNEL, 1)
    in_stream_when_published = []
    fake_redis.when_published = lambda: in_stream_when_published.append(
        fake_redis.stream_events(KEY)
    )

    receivers = RedisHistory(10).publish(client, CHANNEL, json.dumps(event(1)))

    assert receivers == 1
    assert in_stream_when_published == [[event(1)]]
    assert fake_redis.trims == [(KEY, 10, True)]


def test_every_so_many_events_the_xadd_is_answered(
    fake_redis, packed_client, xadds, monkeypatch
):
    monkeypatch.setattr(history_module, "ANSWERED_EVERY", 3)

    fill(RedisHistory(10), packed_client, 7)

    assert [json.loads(fields["event"])["id"] for _, fields in xadds] == [
        "e1",
        "e4",
        "e7",
    ]
    assert ids(fake_redis.stream_events(KEY)) == [f"e{n}" for n in range(1, 8)]
    assert ids(fake_redis.messages(CHANNEL)) == [f"e{n}" for n in range(1, 8)]


@pytest.mark.parametrize("made", ["client", "packed_client"])
def test_a_redis_that_is_down_fails_the_publish(fake_redis, request, made):
    client = request.getfixturevalue(made)
    fake_redis.go_down()

    with pytest.raises(ConnectionError):
        RedisHistory(10).publish(client, CHANNEL, json.dumps(event(1)))

    assert fake_redis.published == []


def test_an_xadd_refused_is_a_warning_and_the_event_is_published(
    fake_redis, client, caplog
):
    """Redis out of memory refuses the XADD and takes the PUBLISH: the event
    reaches the live stream; the log says the history lacks events, once,
    and when Redis keeps them again."""
    caplog.set_level(logging.INFO, logger=history_module.__name__)
    fake_redis.add_subscribers(CHANNEL, 1)
    history = RedisHistory(10)
    refused = ResponseError("OOM command not allowed when used memory > 'maxmemory'")
    fake_redis.fail_next("xadd", refused, refused)

    receivers = [
        history.publish(client, CHANNEL, json.dumps(event(n))) for n in (1, 2, 3)
    ]

    assert receivers == [1, 1, 1]
    assert ids(fake_redis.messages(CHANNEL)) == ["e1", "e2", "e3"]
    assert ids(fake_redis.stream_events(KEY)) == ["e3"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Redis refused to keep an event in the history of osism:events, "
            "which lacks events until it takes them again: OOM command not "
            "allowed when used memory > 'maxmemory'",
        ),
        ("INFO", "Redis keeps the events in the history of osism:events again"),
    ]


def test_an_xadd_refused_with_a_publish_goes_unanswered(
    fake_redis, packed_client, caplog
):
    """Its answer skipped, a refused XADD is seen only on the next answered
    one (ANSWERED_EVERY): the limit of one write per event."""
    history = RedisHistory(10)
    history.publish(packed_client, CHANNEL, json.dumps(event(1)))
    fake_redis.fail_next("xadd", ResponseError("OOM command not allowed"))

    history.publish(packed_client, CHANNEL, json.dumps(event(2)))

    assert ids(fake_redis.messages(CHANNEL)) == ["e1", "e2"]
    assert ids(fake_redis.stream_events(KEY)) == ["e1"]
    assert caplog.records == []


def test_a_user_who_may_not_send_client_reply_gets_answered_xadds(
    fake_redis, packed_client, xadds, caplog
):
    """An ACL without CLIENT REPLY: the skip would be refused and the answers
    get out of step, so every XADD goes apart, answered."""
    fake_redis.fail_next(
        "client", ResponseError("NOPERM User may not run 'client|reply'")
    )
    history = RedisHistory(10)

    fill(history, packed_client, 3)

    assert len(xadds) == 3
    assert ids(fake_redis.stream_events(KEY)) == ["e1", "e2", "e3"]
    assert ids(fake_redis.messages(CHANNEL)) == ["e1", "e2", "e3"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "The Redis user may not send CLIENT REPLY, so each event's XADD to "
            "the history costs a round trip of its own: NOPERM User may not run "
            "'client|reply'",
        )
    ]


def test_the_user_is_asked_once_per_client(fake_redis, packed_client, xadds):
    history = RedisHistory(10)
    fill(history, packed_client, 3)
    fake_redis.fail_next("client", ResponseError("NOPERM"))

    history.publish(packed_client, CHANNEL, json.dumps(event(4)))
    assert len(fake_redis.failures["client"]) == 1  # not asked again
    assert len(xadds) == 1  # the first, answered

    other = fake_redis.client()
    other.connection_pool.connection_kwargs["command_packer"] = HistoryPacker()
    history.publish(other, CHANNEL, json.dumps(event(5)))
    assert len(fake_redis.failures["client"]) == 0  # a new client is asked
    assert ids(fake_redis.stream_events(KEY)) == [f"e{n}" for n in range(1, 6)]


def test_a_redis_down_when_asked_fails_the_publish(fake_redis, packed_client):
    history = RedisHistory(10)
    fill(history, packed_client, 1)
    fake_redis.fail_next("client", ConnectionError("refused"))

    with pytest.raises(ConnectionError):
        history.publish(packed_client, CHANNEL, json.dumps(event(2)))

    assert ids(fake_redis.messages(CHANNEL)) == ["e1"]


def test_a_publish_with_its_xadd_that_fails_closes_the_idle_connections(
    fake_redis, packed_client, xadds
):
    """Answers of what was written may be left unread: no connection is used
    again, and the user is asked again."""
    history = RedisHistory(10)
    fill(history, packed_client, 2)
    fake_redis.fail_next("publish", ConnectionError("reset"))

    with pytest.raises(ConnectionError, match="reset"):
        history.publish(packed_client, CHANNEL, json.dumps(event(3)))
    assert packed_client.connection_pool.disconnected == 1

    fake_redis.fail_next("client", ResponseError("NOPERM"))
    history.publish(packed_client, CHANNEL, json.dumps(event(4)))
    assert len(xadds) == 2  # e1 (the first of 64) and e4 (asked again)
    assert ids(fake_redis.messages(CHANNEL)) == ["e1", "e2", "e4"]


def test_a_client_that_ignores_the_packer_keeps_every_event(
    fake_redis, packed_client, xadds, monkeypatch, caplog
):
    """A stand-in for redis-py that packs its own way: the staged XADD never
    went, so it is sent after the PUBLISH, and apart from then on."""
    monkeypatch.setattr(
        packed_client, "publish", lambda c, m: fake_redis._publish(c, m)
    )
    history = RedisHistory(10)

    fill(history, packed_client, 4)

    assert ids(fake_redis.stream_events(KEY)) == ["e1", "e2", "e3", "e4"]
    assert ids(fake_redis.messages(CHANNEL)) == ["e1", "e2", "e3", "e4"]
    assert len(xadds) == 4
    assert [r.getMessage() for r in caplog.records] == [
        "The Redis client does not pack its commands with the history's packer; "
        "each XADD is sent apart from now on"
    ]
