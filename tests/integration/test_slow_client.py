"""A client that stops reading holds up nobody but itself: the other clients
keep getting every event, in order, while it is stuck, and the server drops
it after the send bound (WEBSOCKET_SEND_TIMEOUT) or for falling more than
WEBSOCKET_MAX_PENDING frames behind, counts the drop and logs it once.

The stopped client is a plain socket with a small receive buffer that
completes the WebSocket opening handshake (the harness's sans-I/O client)
and then reads nothing (a WebSocket library's asyncio client would go on
reading into buffers of its own). The events are
published on the server's Redis channel in the listener's wire format and
padded to 16 KB, so that the buffers between the server and the stopped
client are full after a few MB.
"""

import contextlib
import json
import re
import socket
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import anyio
import pytest

from tests.harness.api_server import ApiServer
from tests.harness.clients import (
    RECEIVE_DEADLINE,
    EventStream,
    get_health,
    open_stream,
    wait_for_health,
)
from tests.harness.fast_clients import Connection
from tests.harness.notifications import ironic
from tests.harness.redis_server import RedisServer
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis]

SEND_TIMEOUT = 1.0
# WEBSOCKET_CLOSE_TIMEOUT of the test that never reads again.
CLOSE_TIMEOUT = 1.0
MAX_PENDING = 50
# The send bound of the WEBSOCKET_MAX_PENDING tests: longer than they run,
# so that only falling behind can drop a client there.
LONG_SEND_TIMEOUT = 60.0
# How soon a client must be dropped once it is certain to be stuck (beyond
# SEND_TIMEOUT where that is the bound), allowing for a loaded machine.
DROP_MARGIN = 2.0
# How soon a client must be dropped once more than WEBSOCKET_MAX_PENDING
# frames wait for it (they do by the time the publisher is done).
PROMPT_DROP = 1.0

PADDING = 16_000  # bytes of padding in every event
BATCH = 32  # events per batch, about 0.5 MB
# The publisher's pace once a client is stuck: a batch, then this pause. It
# keeps the stream going without flooding the machine (about 7 MB/s).
PUBLISH_INTERVAL = 0.05
STOPPED_CLIENT_RCVBUF = 4096
# What the server's transport takes before it pauses its sender (asyncio's
# default high-water mark); one more frame may go past it.
TRANSPORT_HIGH_WATER = 64 * 1024

DROPPED_LINE = re.compile(r"Dropped WebSocket client (\S+): (.*)")
CLOSE_DROPPED = 1011


def clients_are(count):
    return lambda health: health["websocket"]["clients"] == count


def server_holds_connection(server: ApiServer, client_port: int) -> bool:
    """Whether the kernel still has the server's end of the TCP connection
    from ``client_port`` (a connection the server aborted is gone at once)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, remote = line.split()[1:3]
            if (
                int(local.rsplit(":", 1)[1], 16) == server.port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return True
    return False


def dropped_lines(server: ApiServer) -> List[Tuple[str, str]]:
    """(client, reason) of every "Dropped WebSocket client" line in the log."""
    return DROPPED_LINE.findall(server.output())


# --------------------------------------------------------------------------
# The client that stops reading


class StoppedClient:
    """A WebSocket client that completes the opening handshake, then reads
    nothing until the test calls :meth:`read_until_closed`."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        host, self.port = connection.sock.getsockname()[:2]
        # How the server's log names this client.
        self.label = f"{host}:{self.port}"
        # What the kernel made of the receive buffer size asked for.
        self.rcvbuf = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    @classmethod
    def connect(cls, server: ApiServer) -> "StoppedClient":
        return cls(
            Connection.open(
                server.port, rcvbuf=STOPPED_CLIENT_RCVBUF, timeout=RECEIVE_DEADLINE
            )
        )

    def read_until_closed(self) -> Tuple[List[Dict[str, Any]], Optional[int]]:
        """Read again: the event frames the server had sent, and the code of
        its close frame. Each read waits at most RECEIVE_DEADLINE seconds."""
        found = self.connection.read_until_closed(
            quiet_s=RECEIVE_DEADLINE, total_s=4 * RECEIVE_DEADLINE
        )
        if found.close_code is None:
            pytest.fail(
                f"the stopped client, reading again, got {len(found.texts)} "
                "frames and then "
                + (
                    "the end of the connection"
                    if found.eof
                    else f"nothing for {RECEIVE_DEADLINE:g} s"
                )
                + ", no close frame",
                pytrace=False,
            )
        return [json.loads(text) for text in found.texts], found.close_code

    def close(self) -> None:
        self.connection.close()


@contextlib.contextmanager
def stopped_client(server: ApiServer) -> Iterator[StoppedClient]:
    client = StoppedClient.connect(server)
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------
# Publishing numbered events and reading them back


def event_message(resource_id: str) -> str:
    event = ironic("power_set.end", "node-slow", resource_id)
    event["payload"]["padding"] = "x" * PADDING
    return json.dumps(event)


def stuck_bound(client: StoppedClient) -> int:
    """Bytes of events after which ``client``, reading nothing, is certain to
    be stuck: more than the buffers between the server and it can hold (the
    server's kernel send buffer, at most tcp_wmem's maximum; the client's
    receive buffer; what the server's transport takes before it pauses)."""
    try:
        fields = Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()
        send_buffer = int(fields[2])
    except (OSError, IndexError, ValueError):
        send_buffer = 16 * 2**20
    frame = len(event_message("ev-0")) + 200  # the event's frame is bigger
    return send_buffer + client.rcvbuf + TRANSPORT_HIGH_WATER + 2 * frame


class Publisher:
    """Publishes numbered, padded events on a Redis channel as the listener
    does (``{"event_type": ..., "payload": ...}``)."""

    def __init__(self, redis_server: RedisServer, channel: str) -> None:
        self.redis_server = redis_server
        self.channel = channel
        self.published: List[str] = []
        self.bytes = 0

    def _publish(self, messages: List[str]) -> None:
        with contextlib.closing(self.redis_server.client()) as client:
            pipeline = client.pipeline(transaction=False)
            for message in messages:
                pipeline.publish(self.channel, message)
            pipeline.execute()

    async def publish(self, count: int) -> List[str]:
        """Publish ``count`` more events; their resource ids, in order."""
        ids = [f"ev-{len(self.published) + i}" for i in range(count)]
        messages = [event_message(resource_id) for resource_id in ids]
        await anyio.to_thread.run_sync(self._publish, messages)
        self.published += ids
        self.bytes += sum(len(m) for m in messages)
        return ids


async def expect_events(stream: EventStream, ids: List[str], who: str) -> None:
    """The next frames of ``stream`` are the events ``ids``, in this order."""
    for position, resource_id in enumerate(ids):
        try:
            frame = await stream.receive()
        except TimeoutError:
            pytest.fail(
                f"{who} got {position} of the {len(ids)} events from {ids[0]} "
                f"on, then nothing for {RECEIVE_DEADLINE:g} s",
                pytrace=False,
            )
        assert frame["data"]["resource_id"] == resource_id, (
            f"{who}: expected event {resource_id}, got "
            f"{frame['data']['resource_id']} (out of order or lost)"
        )


async def publish_past(publisher: Publisher, reader: EventStream, size: int) -> None:
    """Publish batches, each read in full by ``reader``, until more than
    ``size`` bytes of events have been published."""
    while publisher.bytes <= size:
        ids = await publisher.publish(BATCH)
        await expect_events(reader, ids, "the reading client")


async def stream_until_dropped(
    server: ApiServer, publisher: Publisher, reader: EventStream, stuck_at: int
) -> Tuple[Dict[str, Any], float]:
    """Publish batches, each read in full by ``reader``, until the server
    reports a dropped client. Once the published events pass ``stuck_at``
    bytes, the stopped client is stuck: from then on the batches come at a
    steady pace, and the test fails if nobody is dropped within
    SEND_TIMEOUT + DROP_MARGIN seconds.

    Returns the first health that counts the drop, and how long before that
    health the reader had its last batch while nobody was dropped (and both
    clients were connected).
    """
    last_batch_undropped: Optional[float] = None
    stuck_since: Optional[float] = None
    while True:
        ids = await publisher.publish(BATCH)
        await expect_events(reader, ids, "the reading client")
        read_at = time.monotonic()
        health = await get_health(server)
        if health["websocket"]["counters"]["dropped"]:
            assert last_batch_undropped is not None, "dropped before the first batch"
            return health, time.monotonic() - last_batch_undropped
        assert health["websocket"]["clients"] == 2, health
        last_batch_undropped = read_at
        if stuck_since is None and publisher.bytes > stuck_at:
            stuck_since = read_at
        if stuck_since is not None and read_at - stuck_since > (
            SEND_TIMEOUT + DROP_MARGIN
        ):
            pytest.fail(
                f"the stopped client was not dropped within "
                f"{SEND_TIMEOUT + DROP_MARGIN:g} s of being stuck "
                f"({publisher.bytes / 2**20:.1f} MB in {len(publisher.published)} "
                f"events published); last health: {health}",
                pytrace=False,
            )
        if stuck_since is not None:
            await anyio.sleep(PUBLISH_INTERVAL)


async def assert_still_serving(
    server: ApiServer, publisher: Publisher, reader: EventStream
) -> None:
    """The reader gets new events, and a new client connects and gets them."""
    ids = await publisher.publish(BATCH)
    await expect_events(reader, ids, "the reading client after the drop")
    async with open_stream(server.ws_url) as newcomer:
        await wait_for_health(server, clients_are(2))
        ids = await publisher.publish(2)
        await expect_events(newcomer, ids, "a client connected after the drop")
        await expect_events(reader, ids, "the reading client after the drop")


def assert_prefix_then_dropped(
    publisher: Publisher, frames: List[Dict[str, Any]], code: Optional[int]
) -> None:
    """What a dropped client read: the first events, in order, none skipped,
    then a close frame with code 1011."""
    received = [f["data"]["resource_id"] for f in frames]
    assert received == publisher.published[: len(received)]
    assert len(received) < len(publisher.published)
    assert code == CLOSE_DROPPED


# --------------------------------------------------------------------------
# The tests


class TestAClientThatStopsReadingDoesNotHoldUpTheOthers:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_the_reader_gets_every_event_while_the_other_is_stuck_which_is_dropped_after_the_send_bound(  # noqa: E501
        self, api_server, redis_server
    ):
        server = api_server(
            "redis", env={"WEBSOCKET_SEND_TIMEOUT": f"{SEND_TIMEOUT:g}"}
        )
        publisher = Publisher(redis_server, server.channel)
        with stopped_client(server) as stopped:
            async with open_stream(server.ws_url) as reader:
                await wait_for_health(server, clients_are(2))
                health, since_last_batch = await stream_until_dropped(
                    server, publisher, reader, stuck_bound(stopped)
                )
                # A send to the stopped client was blocked for about
                # SEND_TIMEOUT seconds before the drop (at least half of it,
                # however the bound is kept); the reader had a whole batch
                # after that send began, so the stream went on during the
                # stall.
                assert since_last_batch < SEND_TIMEOUT / 2, (
                    f"the reader's last batch before the drop came "
                    f"{since_last_batch:.2f} s before it: the events waited for "
                    "the stuck client"
                )
                assert health["websocket"]["clients"] == 1
                assert health["websocket"]["counters"]["dropped"] == 1
                # Reading again right away (closing a dropped client is
                # bounded by the send bound too), it finds the events up to
                # the stall, then the close.
                frames, code = await anyio.to_thread.run_sync(stopped.read_until_closed)
                assert_prefix_then_dropped(publisher, frames, code)

                await assert_still_serving(server, publisher, reader)

        after = await wait_for_health(server, clients_are(0))
        assert after["websocket"]["counters"]["dropped"] == 1
        assert dropped_lines(server) == [
            (stopped.label, f"a send took longer than {SEND_TIMEOUT:g} s")
        ]


class TestADroppedClientThatNeverReadsAgain:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_loses_its_connection_once_the_close_timeout_is_over(
        self, api_server, redis_server
    ):
        server = api_server(
            "redis",
            env={
                "WEBSOCKET_SEND_TIMEOUT": f"{SEND_TIMEOUT:g}",
                "WEBSOCKET_CLOSE_TIMEOUT": f"{CLOSE_TIMEOUT:g}",
            },
        )
        publisher = Publisher(redis_server, server.channel)
        with stopped_client(server) as stopped:
            async with open_stream(server.ws_url) as reader:
                await wait_for_health(server, clients_are(2))
                await stream_until_dropped(
                    server, publisher, reader, stuck_bound(stopped)
                )

                # uvicorn alone would wait for the stopped client to take
                # the close frame, for good.
                await wait_until(
                    lambda: not server_holds_connection(server, stopped.port),
                    timeout=CLOSE_TIMEOUT + DROP_MARGIN,
                )
                await assert_still_serving(server, publisher, reader)


def max_pending_server(api_server) -> ApiServer:
    server: ApiServer = api_server(
        "redis",
        env={
            "WEBSOCKET_SEND_TIMEOUT": f"{LONG_SEND_TIMEOUT:g}",
            "WEBSOCKET_MAX_PENDING": str(MAX_PENDING),
        },
    )
    return server


class TestAClientThatFallsTooFarBehindIsDropped:
    @pytest.mark.anyio
    async def test_once_it_reads_again_it_gets_the_events_up_to_where_it_fell_behind_then_a_close(  # noqa: E501
        self, api_server, redis_server
    ):
        server = max_pending_server(api_server)
        publisher = Publisher(redis_server, server.channel)
        with stopped_client(server) as stopped:
            async with open_stream(server.ws_url) as reader:
                await wait_for_health(server, clients_are(2))
                # Stuck, and then MAX_PENDING frames more: it fell behind.
                await publish_past(
                    publisher,
                    reader,
                    stuck_bound(stopped) + 2 * MAX_PENDING * len(event_message("")),
                )
                frames, code = await anyio.to_thread.run_sync(stopped.read_until_closed)
                assert_prefix_then_dropped(publisher, frames, code)
                health = await wait_for_health(server, clients_are(1))
                assert health["websocket"]["counters"]["dropped"] == 1
                await assert_still_serving(server, publisher, reader)

        after = await wait_for_health(server, clients_are(0))
        assert after["websocket"]["counters"]["dropped"] == 1
        assert dropped_lines(server) == [
            (
                stopped.label,
                f"it fell behind: more than {MAX_PENDING} frames were pending",
            )
        ]

    @pytest.mark.anyio
    async def test_while_it_reads_nothing_it_is_dropped_and_the_other_gets_everything(  # noqa: E501
        self, api_server, redis_server
    ):
        server = max_pending_server(api_server)
        publisher = Publisher(redis_server, server.channel)
        with stopped_client(server) as stopped:
            async with open_stream(server.ws_url) as reader:
                await wait_for_health(server, clients_are(2))
                await publish_past(
                    publisher,
                    reader,
                    stuck_bound(stopped) + 2 * MAX_PENDING * len(event_message("")),
                )
                health = await wait_for_health(
                    server, clients_are(1), timeout=PROMPT_DROP
                )
                assert health["websocket"]["counters"]["dropped"] == 1
                await assert_still_serving(server, publisher, reader)
                frames, code = await anyio.to_thread.run_sync(stopped.read_until_closed)
                assert_prefix_then_dropped(publisher, frames, code)

        after = await wait_for_health(server, clients_are(0))
        assert after["websocket"]["counters"]["dropped"] == 1
        assert dropped_lines(server) == [
            (
                stopped.label,
                f"it fell behind: more than {MAX_PENDING} frames were pending",
            )
        ]
