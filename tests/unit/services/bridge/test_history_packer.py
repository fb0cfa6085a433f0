"""Unit tests of osism.services.bridge.history_packer: the XADD packed in
front of its PUBLISH."""

import threading

import hiredis
import pytest
from redis import utils as redis_utils

from osism.services.bridge.history_packer import HistoryPacker

XADD = ("osism:events:history", "MAXLEN", "~", 10, "*", "event", "{}")


def commands(packed):
    """The commands in what a packer wrote, as Redis reads them."""
    reader = hiredis.Reader(encoding="utf-8")
    for piece in packed:
        reader.feed(piece)
    read = []
    while (command := reader.gets()) is not False:
        read.append(command)
    return read


def test_a_staged_xadd_goes_in_the_write_of_its_publish():
    packer = HistoryPacker()
    channel, message = "osism:events", '{"event_type": "x.y"}'

    with packer.ahead_of(channel, message, *XADD) as staged:
        assert not staged.sent
        packed = packer.pack("PUBLISH", channel, message)

    assert staged.sent
    assert len(packed) == 1
    assert commands(packed) == [
        ["CLIENT", "REPLY", "SKIP"],
        ["XADD", "osism:events:history", "MAXLEN", "~", "10", "*", "event", "{}"],
        ["PUBLISH", channel, message],
    ]


def test_other_commands_are_packed_as_they_are():
    packer = HistoryPacker()
    channel, message = "osism:events", '{"event_type": "x.y"}'
    other = "".join(['{"event_type": "x.y"', "}"])  # equal, not the same

    with packer.ahead_of(channel, message, *XADD) as staged:
        assert commands(packer.pack("PING")) == [["PING"]]
        assert commands(packer.pack("PUBLISH", channel, other)) == [
            ["PUBLISH", channel, other]
        ]
        assert commands(packer.pack("XREVRANGE", channel, "+", "-")) == [
            ["XREVRANGE", channel, "+", "-"]
        ]
        assert not staged.sent
        assert len(commands(packer.pack("PUBLISH", channel, message))) == 3


def test_a_staged_xadd_goes_once_and_not_after_its_block():
    packer = HistoryPacker()
    channel, message = "osism:events", "m"

    with packer.ahead_of(channel, message, *XADD):
        assert len(commands(packer.pack("PUBLISH", channel, message))) == 3
        assert commands(packer.pack("PUBLISH", channel, message)) == [
            ["PUBLISH", channel, message]
        ]
    with packer.ahead_of(channel, message, *XADD):
        pass
    assert len(commands(packer.pack("PUBLISH", channel, message))) == 1


def test_a_publish_of_another_thread_goes_as_it_is():
    packer = HistoryPacker()
    channel, message = "osism:events", "m"
    packed_elsewhere = []

    with packer.ahead_of(channel, message, *XADD):
        thread = threading.Thread(
            target=lambda: packed_elsewhere.append(
                packer.pack("PUBLISH", channel, message)
            )
        )
        thread.start()
        thread.join(timeout=10)
        assert len(commands(packer.pack("PUBLISH", channel, message))) == 3

    assert commands(packed_elsewhere[0]) == [["PUBLISH", channel, message]]


@pytest.mark.parametrize("hiredis_available", [True, False])
def test_it_packs_as_redis_py_does_with_and_without_hiredis(
    monkeypatch, hiredis_available
):
    monkeypatch.setattr(redis_utils, "HIREDIS_AVAILABLE", hiredis_available)
    packer = HistoryPacker()
    large = "x" * 10_000  # apart from the command, in redis-py's own packer
    channel = "osism:events"

    with packer.ahead_of(channel, large, *XADD[:-1], large):
        packed = packer.pack("PUBLISH", channel, large)

    assert len(packed) == 1
    assert [c[0] for c in commands(packed)] == ["CLIENT", "XADD", "PUBLISH"]
    assert commands(packed)[1][-1] == large == commands(packed)[2][-1]
