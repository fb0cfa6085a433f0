"""Unit tests of osism.services.bridge.loop_reader: a pub/sub read on an
asyncio loop. The pub/sub is a stand-in whose connection owns one end of a
real socket pair: a byte written to the other end makes the loop call the
reader, as Redis's data does."""

import asyncio
import socket
from collections import deque
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple

import anyio
import pytest

from osism.services.bridge import loop_reader
from osism.services.bridge.loop_reader import LoopReader, socket_of
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.anyio


class FakeConnection:
    """What LoopReader uses of a redis-py connection: the socket, can_read,
    read_response and send_command. Replies wait in ``replies``; the socket
    only wakes the loop."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: Optional[socket.socket] = sock
        self.replies: Deque[Any] = deque()
        self.sent: List[Tuple[str, ...]] = []
        self.failure: Optional[BaseException] = None
        self.disconnected = False

    def disconnect(self) -> None:
        self.disconnected = True

    def can_read(self, timeout: float = 0) -> bool:
        assert timeout == 0, "the loop must never wait for Redis"
        if self.failure is not None:
            raise self.failure
        assert self._sock is not None
        try:
            while self._sock.recv(4096):
                pass
        except BlockingIOError:
            pass
        return bool(self.replies)

    def read_response(self, **options: Any) -> Any:
        assert options["push_request"] and not options["disconnect_on_error"]
        return self.replies.popleft()

    def send_command(self, *args: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append(args)


class FakePubSub:
    def __init__(self, connection: Optional[FakeConnection]) -> None:
        self.connection = connection

    def handle_message(self, reply: Tuple[str, str]) -> Optional[Dict[str, Any]]:
        # redis-py answers None for what it keeps to itself.
        if reply[0] == "hidden":
            return None
        return {"type": reply[0], "data": reply[1]}


class Redis:
    """The far end of the pub/sub's socket."""

    def __init__(self) -> None:
        self.far, near = socket.socketpair()
        near.setblocking(False)
        self.connection = FakeConnection(near)
        self.pubsub = FakePubSub(self.connection)

    def send(self, *replies: Tuple[str, str]) -> None:
        self.connection.replies.extend(replies)
        self.far.send(b"!")

    def close(self) -> None:
        self.far.close()
        assert self.connection._sock is not None
        self.connection._sock.close()


@pytest.fixture
def redis() -> Iterator[Redis]:
    made = Redis()
    yield made
    made.close()


class Taken(List[Dict[str, Any]]):
    """What the reader handed over, and on which loop."""

    def __call__(self, message: Dict[str, Any]) -> None:
        asyncio.get_running_loop()
        self.append(message)


@pytest.fixture
async def reader() -> LoopReader:
    return LoopReader(asyncio.get_running_loop(), Taken())


def taken(reader: LoopReader) -> List[Any]:
    return [(m["type"], m["data"]) for m in reader.take]  # type: ignore[attr-defined]


def registered(reader: LoopReader, redis: Redis) -> bool:
    """Whether the loop still watched the socket (removing it tells)."""
    assert redis.connection._sock is not None
    return reader.loop.remove_reader(redis.connection._sock.fileno())


async def test_what_is_buffered_is_taken_at_once_and_the_rest_as_it_comes(
    reader, redis
):
    redis.connection.replies.extend([("subscribe", "osism:events"), ("message", "a")])

    assert reader.attach(redis.pubsub)
    assert taken(reader) == [("subscribe", "osism:events"), ("message", "a")]
    assert reader.pubsub is redis.pubsub

    redis.send(("message", "b"), ("hidden", ""), ("message", "c"))
    await wait_until(lambda: len(taken(reader)) == 4)
    redis.send(("pong", ""))
    await wait_until(lambda: len(taken(reader)) == 5)
    assert taken(reader)[2:] == [("message", "b"), ("message", "c"), ("pong", "")]
    reader.detach()


async def test_attached_from_another_thread_it_reads_on_the_loop(reader, redis):
    assert await anyio.to_thread.run_sync(reader.attach, redis.pubsub)

    redis.send(("message", "a"))
    await wait_until(lambda: taken(reader) == [("message", "a")])
    await anyio.to_thread.run_sync(reader.detach)
    assert not registered(reader, redis)


async def test_after_detach_nothing_more_is_read(reader, redis):
    reader.attach(redis.pubsub)

    reader.detach()
    redis.send(("message", "late"))
    await anyio.sleep(0)  # a turn of the loop, in which nothing may happen

    assert reader.pubsub is None
    assert not registered(reader, redis)
    assert list(redis.connection.replies) == [("message", "late")]
    # Detaching again, pinging and waiting while detached do nothing.
    reader.detach()
    reader.ping()
    reader.wait(0)
    assert redis.connection.sent == []


async def test_a_failed_read_stops_reading_and_the_waiting_thread_gets_it(
    reader, redis
):
    reader.attach(redis.pubsub)
    redis.connection.failure = ConnectionError("Connection reset by peer")
    redis.send(("message", "lost with the connection"))

    with pytest.raises(ConnectionError, match="reset by peer"):
        await anyio.to_thread.run_sync(reader.wait, 5.0)
    # Disconnected, so that subscribing again connects afresh.
    assert redis.connection.disconnected
    assert reader.pubsub is None
    assert not registered(reader, redis)
    assert reader.take == []


async def test_a_connection_taken_away_is_a_failed_read(reader, redis):
    reader.attach(redis.pubsub)
    redis.pubsub.connection = None
    redis.far.send(b"!")

    with pytest.raises(ConnectionError, match="no connection"):
        await anyio.to_thread.run_sync(reader.wait, 5.0)


async def test_waiting_without_a_failure_returns_after_the_timeout(reader, redis):
    reader.attach(redis.pubsub)

    await anyio.to_thread.run_sync(reader.wait, 0.01)

    assert reader.pubsub is redis.pubsub
    reader.detach()


async def test_a_new_attach_forgets_the_last_failure(reader, redis):
    reader.attach(redis.pubsub)
    redis.connection.failure = ConnectionError("gone")
    redis.send(("message", "x"))
    with pytest.raises(ConnectionError):
        await anyio.to_thread.run_sync(reader.wait, 5.0)

    redis.connection.failure = None
    assert reader.attach(redis.pubsub)
    await anyio.to_thread.run_sync(reader.wait, 0.01)
    assert taken(reader) == [("message", "x")]
    reader.detach()


async def test_a_ping_is_sent_from_the_loop(reader, redis):
    reader.attach(redis.pubsub)

    await anyio.to_thread.run_sync(reader.ping)

    await wait_until(lambda: redis.connection.sent == [("PING",)])
    reader.detach()


async def test_a_ping_that_fails_is_a_failed_read(reader, redis):
    reader.attach(redis.pubsub)
    redis.connection.failure = ConnectionError("Broken pipe")

    reader.ping()

    with pytest.raises(ConnectionError, match="Broken pipe"):
        await anyio.to_thread.run_sync(reader.wait, 5.0)


async def test_a_pubsub_without_a_socket_is_not_taken(reader):
    unconnected = FakeConnection(socket.socket())
    unconnected._sock.close()  # type: ignore[union-attr]
    unconnected._sock = None

    assert socket_of(FakePubSub(None)) is None
    assert not reader.attach(FakePubSub(None))
    assert not reader.attach(FakePubSub(unconnected))
    assert reader.pubsub is None


def test_a_closed_loop_does_not_take_the_pubsub(redis):
    loop = asyncio.new_event_loop()
    loop.close()
    reader = LoopReader(loop, Taken())

    assert not reader.attach(redis.pubsub)
    assert reader.pubsub is None


def test_a_loop_that_does_not_answer_in_time_does_not_take_it(redis, monkeypatch):
    monkeypatch.setattr(loop_reader, "LOOP_ANSWER_TIMEOUT", 0.01)
    loop = asyncio.new_event_loop()
    try:
        reader = LoopReader(loop, Taken())

        assert not reader.attach(redis.pubsub)
        assert reader.pubsub is None
    finally:
        loop.close()


# Long enough that a turn of the loop never lasts it, even on a busy machine.
INTERVAL = 0.5


async def test_under_a_steady_stream_reads_are_a_batch_interval_apart(redis):
    loop = asyncio.get_running_loop()
    reader = LoopReader(loop, Taken(), batch_interval=INTERVAL)
    reader.attach(redis.pubsub)

    # The first message after a quiet spell is read at once.
    redis.send(("message", "a"))
    await wait_until(lambda: taken(reader) == [("message", "a")])
    first_read = loop.time()
    # What comes within the interval waits for it to pass, and goes
    # together.
    redis.send(("message", "b"))
    redis.send(("message", "c"))
    await anyio.sleep(0.05)
    assert taken(reader) == [("message", "a")]
    await wait_until(lambda: len(taken(reader)) == 3)
    # (the loop may run a timer up to its clock resolution early)
    assert loop.time() - first_read >= INTERVAL - 0.01
    assert taken(reader)[1:] == [("message", "b"), ("message", "c")]
    # The socket is watched again afterwards.
    redis.send(("message", "d"))
    await wait_until(lambda: len(taken(reader)) == 4, timeout=2 * INTERVAL + 5)
    reader.detach()


async def test_detaching_while_a_read_waits_cancels_it(redis):
    loop = asyncio.get_running_loop()
    reader = LoopReader(loop, Taken(), batch_interval=INTERVAL)
    reader.attach(redis.pubsub)
    redis.send(("message", "a"))
    await wait_until(lambda: len(taken(reader)) == 1)
    redis.send(("message", "b"))
    await anyio.sleep(0.05)

    reader.detach()
    await anyio.sleep(INTERVAL + 0.1)

    assert taken(reader) == [("message", "a")]
    assert not registered(reader, redis)
