"""Event bridge to event bridge over a real redis-server, in this process."""

import asyncio
import contextlib
import json
from typing import Any, Dict, List

import anyio
import pytest

from osism.services.bridge.loop_reader import LoopReader, socket_of
from osism.services.event_bridge import EventBridge
from osism.services.websocket_manager import WebSocketManager
from tests.harness.in_process import bridge_threads
from tests.harness.notifications import expected_data, ironic
from tests.harness.ports import LOOPBACK
from tests.harness.waiting import wait_for
from tests.event_format import EVENT_KEYS

pytestmark = [pytest.mark.integration, pytest.mark.redis]


class FakeWebSocket:
    """The part of a starlette WebSocket the manager uses; frames go to a stream."""

    client = None

    def __init__(self) -> None:
        self.sent, self.received = anyio.create_memory_object_stream[str](100)

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        await self.sent.send(text)

    async def close(self, code: int = 1000) -> None:
        pass


@pytest.fixture
def redis_env(redis_server, channel, monkeypatch):
    """Settings pointing at the session's redis-server and this test's channel."""
    monkeypatch.setenv("REDIS_HOST", LOOPBACK)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("REDIS_DB", "0")
    monkeypatch.setenv("REDIS_CHANNEL", channel)
    return redis_server


@pytest.fixture
def raw_subscriber(redis_env, channel):
    """A plain redis-py pub/sub subscribed to the test's channel."""
    with contextlib.closing(redis_env.client()) as client:
        pubsub = client.pubsub()
        with contextlib.closing(pubsub):
            pubsub.subscribe(channel)
            confirmation = pubsub.get_message(timeout=5)
            assert confirmation is not None and confirmation["type"] == "subscribe"
            yield pubsub


class TestAnEventAddedToOneBridgeReachesAnotherBridgesManager:
    @pytest.mark.anyio
    async def test_the_wire_message_and_the_delivered_event(
        self, redis_env, channel, raw_subscriber
    ):
        notification = ironic("power_set.end", "node1", "abc-123")
        manager = WebSocketManager(send_timeout=5.0, max_pending=100)
        await manager.start()
        websocket = FakeWebSocket()
        await manager.connect(websocket)  # type: ignore[arg-type]
        subscriber_bridge = EventBridge()
        publisher_bridge = EventBridge()
        try:
            subscriber_bridge.set_websocket_manager(manager)
            # Subscribed for real: Redis counts the raw subscriber and the bridge.
            await anyio.to_thread.run_sync(
                lambda: wait_for(
                    lambda: redis_env.subscribers(channel) == 2,
                    what="the bridge subscribing to the channel",
                )
            )
            assert subscriber_bridge.health()["subscriber_alive"] is True

            publisher_bridge.add_event(
                notification["event_type"], notification["payload"]
            )

            message = await anyio.to_thread.run_sync(
                lambda: raw_subscriber.get_message(timeout=5)
            )
            assert message is not None
            assert message["type"] == "message"
            assert message["channel"] == channel
            assert message["data"] == json.dumps(notification)

            with anyio.fail_after(5):
                frame = json.loads(await websocket.received.receive())
            assert set(frame) == EVENT_KEYS
            assert frame["event_type"] == "baremetal.node.power_set.end"
            assert frame["source"] == "openstack"
            assert frame["node_name"] == "node1"
            assert frame["data"] == expected_data(
                notification["payload"], "baremetal", "abc-123"
            )
            assert publisher_bridge.stats["published"] == 1
            assert manager.stats["received"] == 1
            assert manager.stats["broadcast"] == 1
        finally:
            await anyio.to_thread.run_sync(publisher_bridge.shutdown)
            await anyio.to_thread.run_sync(subscriber_bridge.shutdown)
            await manager.stop()
            websocket.sent.close()
            websocket.received.close()

        assert bridge_threads() == []
        # The bridge's Redis subscription is gone too.
        assert redis_env.subscribers(channel) == 1


class TestAPublishingBridgeStartsNoThreads:
    def test_add_event_publishes_without_a_thread(
        self, redis_env, channel, raw_subscriber
    ):
        notification = ironic("power_set.end", "node7")
        bridge = EventBridge()
        try:
            bridge.add_event(notification["event_type"], notification["payload"])
            assert bridge_threads() == []
            message = raw_subscriber.get_message(timeout=5)
            assert message is not None
            assert message["data"] == json.dumps(notification)
            assert bridge.health()["counters"] == {"published": 1}
        finally:
            bridge.shutdown()


class TestTheChannelReadOnTheLoop:
    """bridge/loop_reader.py on a real redis-py pub/sub: the private socket
    it watches is where redis-py keeps it, and what Redis sends is read."""

    @pytest.mark.timeout(20)
    @pytest.mark.anyio
    async def test_what_is_published_is_read_on_the_loop_in_order(
        self, raw_subscriber, redis_env, channel
    ):
        taken: List[Dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        reader = LoopReader(loop, taken.append, batch_interval=0.02)
        fd = socket_of(raw_subscriber)
        assert fd == raw_subscriber.connection._sock.fileno()

        assert reader.attach(raw_subscriber)
        with contextlib.closing(redis_env.client()) as publisher:
            for n in range(50):
                publisher.publish(channel, f"m{n}")
            await anyio.to_thread.run_sync(reader.ping)
            with anyio.fail_after(10):
                while len(taken) < 51:
                    await anyio.sleep(0.01)
        reader.detach()

        messages = [m["data"] for m in taken if m["type"] == "message"]
        assert messages == [f"m{n}" for n in range(50)]
        # The answer to the ping (whose shape depends on the protocol
        # version) came too: it is what tells the subscriber Redis is alive.
        assert len([m for m in taken if m["type"] != "message"]) == 1


class TestTheHistoryRidesWithThePublish:
    """bridge/history_packer.py on a real redis-server: the XADD goes in the
    PUBLISH's write with its answer skipped, so every answer redis-py reads
    is the one it waits for."""

    def test_every_event_is_in_the_stream_and_on_the_channel_in_order(
        self, redis_env, channel, raw_subscriber
    ):
        events = 150  # more than two rounds of ANSWERED_EVERY
        bridge = EventBridge()
        try:
            for number in range(events):
                bridge.add_event("x.y", {"n": number})
            assert bridge.health()["counters"] == {"published": events}
            received = [raw_subscriber.get_message(timeout=5) for _ in range(events)]
            with contextlib.closing(redis_env.client()) as client:
                kept = client.xrange(f"{channel}:history")
                # The link answers plain commands after all those skipped.
                assert client.ping() is True
        finally:
            bridge.shutdown()

        expected = [{"event_type": "x.y", "payload": {"n": n}} for n in range(events)]
        assert [json.loads(m["data"]) for m in received if m] == expected
        assert [json.loads(fields["event"]) for _, fields in kept] == expected

    def test_a_history_key_that_is_no_stream_costs_no_event(
        self, redis_env, channel, raw_subscriber, caplog
    ):
        with contextlib.closing(redis_env.client()) as client:
            client.set(f"{channel}:history", "not a stream")
        bridge = EventBridge()
        try:
            for number in range(70):
                bridge.add_event("x.y", {"n": number})
            received = [raw_subscriber.get_message(timeout=5) for _ in range(70)]
        finally:
            bridge.shutdown()

        assert [json.loads(m["data"])["payload"]["n"] for m in received if m] == list(
            range(70)
        )
        refused = [
            r.getMessage() for r in caplog.records if "refused" in r.getMessage()
        ]
        assert len(refused) == 1
        assert "WRONGTYPE" in refused[0]

    def test_a_redis_user_without_client_reply_loses_no_event(
        self, redis_env, channel, raw_subscriber, monkeypatch, caplog
    ):
        """An ACL that forbids CLIENT: every XADD goes apart, answered; the
        answers stay in step."""
        user = f"no-client-{channel.rsplit(':', 1)[-1]}"
        with contextlib.closing(redis_env.client()) as client:
            client.acl_setuser(
                user,
                enabled=True,
                passwords=["+secret"],
                keys=["osism:events*"],
                channels=["osism:events*"],
                commands=["+@all", "-client"],
            )
        monkeypatch.setenv("REDIS_USERNAME", user)
        monkeypatch.setenv("REDIS_PASSWORD", "secret")
        bridge = EventBridge()
        try:
            for number in range(70):
                bridge.add_event("x.y", {"n": number})
            assert bridge.health()["counters"] == {"published": 70}
            received = [raw_subscriber.get_message(timeout=5) for _ in range(70)]
        finally:
            bridge.shutdown()
            with contextlib.closing(redis_env.client()) as client:
                kept = client.xrange(f"{channel}:history")
                client.acl_deluser(user)

        numbers = list(range(70))
        assert [json.loads(m["data"])["payload"]["n"] for m in received if m] == (
            numbers
        )
        assert [json.loads(f["event"])["payload"]["n"] for _, f in kept] == numbers
        assert any(
            "may not send CLIENT REPLY" in r.getMessage() for r in caplog.records
        )
