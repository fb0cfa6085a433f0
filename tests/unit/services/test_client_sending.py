"""Unit tests of osism.services.client_sending: a frame written straight to
the client's connection while nothing of the client's waits, through its
outbox and sender task otherwise, and what happens to a client that fails."""

import asyncio
import logging
from typing import Any

import anyio
import pytest
from starlette.websockets import WebSocketDisconnect

from osism.services.client_sending import CLOSE_DROPPED
from osism.services.frame_writer import FrameBatch
from osism.services.websocket_connection import WebSocketConnection
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.anyio

WS = "osism.websocket"


class TestDirectWrites:
    async def test_an_idle_client_is_written_to_without_outbox_or_task(self, setup):
        client = setup.client()

        assert setup.deliver(client, "e1") is True

        await setup.settle()
        assert client.log == [("direct", "e1")]
        assert client.connection.outbox is None
        assert client.connection.sender is None
        client.websocket.send_text.assert_not_awaited()

    async def test_direct_frames_keep_their_order(self, setup):
        client = setup.client()

        for n in range(5):
            setup.deliver(client, f"e{n}")

        await setup.settle()
        assert client.log == [("direct", f"e{n}") for n in range(5)]

    async def test_a_client_without_a_writer_gets_its_frames_from_its_sender(
        self, setup
    ):
        websocket = setup.make_websocket()
        connection = WebSocketConnection(websocket)
        setup.connections[websocket] = connection

        assert setup.sending.deliver(connection, "e1") is True
        setup.tasks.append(connection.sender)

        await wait_until(lambda: websocket.send_text.await_count == 1)
        websocket.send_text.assert_awaited_once_with("e1")


class TestRefusedWrites:
    async def test_a_refused_frame_goes_out_through_the_outbox(self, setup):
        client = setup.client()
        client.writer.accepting = False

        assert setup.deliver(client, "e1") is True

        assert client.connection.outbox is not None
        assert client.connection.sender is not None
        await wait_until(lambda: client.log == [("outbox", "e1")])

    async def test_frames_behind_a_waiting_outbox_join_it_in_order(self, setup):
        client = setup.client()
        # The connection takes frames again, but e1 has not gone out yet.
        await setup.stall(client, "e1")

        setup.deliver(client, "e2")
        setup.deliver(client, "e3")

        assert client.writer.calls == 1
        client.gate.set()
        await wait_until(lambda: len(client.log) == 3)
        assert client.log == [("outbox", "e1"), ("outbox", "e2"), ("outbox", "e3")]

    async def test_once_the_outbox_drained_frames_are_written_directly_again(
        self, setup
    ):
        client = setup.client()
        client.writer.accepting = False
        setup.deliver(client, "e1")
        await wait_until(lambda: client.log == [("outbox", "e1")])
        await wait_until(lambda: client.connection.outbox.pending == 0)
        sender = client.connection.sender

        client.writer.accepting = True
        setup.deliver(client, "e2")

        await setup.settle()
        assert client.log == [("outbox", "e1"), ("direct", "e2")]
        assert client.websocket.send_text.await_count == 1
        # The same sender waits for what may be refused next.
        assert client.connection.sender is sender
        client.writer.accepting = False
        setup.deliver(client, "e3")
        await wait_until(lambda: len(client.log) == 3)
        assert client.log[-1] == ("outbox", "e3")
        assert client.connection.sender is sender

    async def test_the_outbox_takes_the_bounds_in_force_when_it_is_made(self, setup):
        client = setup.client()
        client.writer.accepting = False
        setup.bounds.send_timeout, setup.bounds.max_pending = 2.5, 7

        setup.deliver(client, "e1")

        outbox = client.connection.outbox
        assert (outbox.send_timeout, outbox.max_pending) == (2.5, 7)


class TestBatches:
    def deliver_batch(self, setup, client, texts):
        sent = setup.sending.deliver_batch(client.connection, FrameBatch(texts))
        sender = client.connection.sender
        if sender is not None and sender not in setup.tasks:
            setup.tasks.append(sender)
        return sent

    async def test_a_client_that_keeps_up_gets_the_batch_in_one_write_now(self, setup):
        client = setup.client()

        assert self.deliver_batch(setup, client, ["e1", "e2"]) == 2

        assert client.writer.batches == 1
        assert client.writer.calls == 0
        assert client.log == [("direct", "e1"), ("direct", "e2")]
        assert client.connection.sender is None

    async def test_a_refused_batch_goes_out_frame_by_frame_through_the_outbox(
        self, setup
    ):
        client = setup.client()
        client.writer.accepting = False

        assert self.deliver_batch(setup, client, ["e1", "e2"]) == 2

        await wait_until(lambda: len(client.log) == 2)
        assert client.log == [("outbox", "e1"), ("outbox", "e2")]

    async def test_a_batch_behind_a_waiting_outbox_joins_it_in_order(self, setup):
        client = setup.client()
        await setup.stall(client, "e1")

        assert self.deliver_batch(setup, client, ["e2", "e3"]) == 2

        assert client.writer.batches == 0
        client.gate.set()
        await wait_until(lambda: len(client.log) == 3)
        assert client.log == [("outbox", "e1"), ("outbox", "e2"), ("outbox", "e3")]

    async def test_an_outbox_that_overflows_takes_what_fits(self, setup):
        client = setup.client()
        client.writer.accepting = False
        client.gate.clear()

        sent = self.deliver_batch(setup, client, [f"e{n}" for n in range(6)])

        # max_pending (3) wait; the fourth overflows the outbox, which
        # takes nothing more, and the client is dropped.
        assert sent == 3
        await wait_until(lambda: setup.stats["dropped"] == 1)

    async def test_a_client_gone_since_the_batch_was_staged_gets_nothing(self, setup):
        client = setup.client()
        setup.sending.forget(client.connection)

        assert self.deliver_batch(setup, client, ["e1"]) == 0

        assert client.writer.batches == 0
        assert client.connection.outbox is None
        assert client.log == []


class TestDroppingClients:
    async def test_a_paused_client_is_dropped_past_max_pending(
        self, setup, websocket_logs
    ):
        client, other = setup.client(), setup.client()
        client.writer.accepting = False
        client.gate.clear()
        setup.deliver(client, "e0")
        await wait_until(lambda: client.websocket.send_text.await_count == 1)

        # One being sent and max_pending (3) waiting; the next overflows.
        accepted = [setup.deliver(client, f"e{n}") for n in range(1, 5)]

        assert accepted == [True, True, True, False]
        await wait_until(lambda: client.websocket not in setup.connections)
        await wait_until(lambda: client.websocket.close.await_count == 1)
        client.websocket.close.assert_awaited_once_with(code=CLOSE_DROPPED)
        assert setup.stats["dropped"] == 1
        assert (
            WS,
            logging.WARNING,
            "Dropped WebSocket client h:1: it fell behind: "
            "more than 3 frames were pending",
        ) in websocket_logs()
        assert client.log == []
        # Nobody else was held up or dropped.
        assert setup.deliver(other, "e5") is True
        await setup.settle()
        assert other.log == [("direct", "e5")]
        assert setup.connections == {other.websocket: other.connection}

    async def test_a_client_that_went_away_is_forgotten_without_a_drop(
        self, setup, websocket_logs
    ):
        client = setup.client()
        client.writer.accepting = False
        client.send_error = WebSocketDisconnect(1006)

        setup.deliver(client, "e1")

        await wait_until(lambda: client.websocket not in setup.connections)
        await wait_until(lambda: client.connection.sender.done())
        assert setup.stats["dropped"] == 0
        client.websocket.close.assert_not_awaited()
        assert (WS, logging.INFO, "WebSocket client h:1 went away") in (
            websocket_logs()
        )

    async def test_a_send_that_takes_too_long_drops_the_client(
        self, setup, websocket_logs
    ):
        setup.bounds.send_timeout = 0.05
        client = setup.client()
        client.writer.accepting = False
        client.gate.clear()

        setup.deliver(client, "e1")

        await wait_until(lambda: client.websocket not in setup.connections)
        await wait_until(lambda: client.websocket.close.await_count == 1)
        assert setup.stats["dropped"] == 1
        assert (
            WS,
            logging.WARNING,
            "Dropped WebSocket client h:1: a send took longer than 0.05 s",
        ) in websocket_logs()

    async def test_a_send_that_fails_drops_the_client_with_an_error(
        self, setup, websocket_logs
    ):
        client = setup.client()
        client.writer.accepting = False
        client.send_error = RuntimeError("boom")

        setup.deliver(client, "e1")

        await wait_until(lambda: client.websocket.close.await_count == 1)
        assert client.websocket not in setup.connections
        assert setup.stats["dropped"] == 1
        assert (
            WS,
            logging.ERROR,
            "Dropped WebSocket client h:1: error sending to it: RuntimeError('boom')",
        ) in websocket_logs()

    async def test_a_dropped_client_that_reconnected_keeps_its_new_connection(
        self, setup
    ):
        client = setup.client()
        client.writer.accepting = False
        client.send_error = RuntimeError("boom")
        client.gate.clear()
        setup.deliver(client, "e1")
        await wait_until(lambda: client.websocket.send_text.await_count == 1)
        newer = WebSocketConnection(client.websocket)
        setup.connections[client.websocket] = newer

        client.gate.set()

        await wait_until(lambda: client.websocket.close.await_count == 1)
        assert setup.connections[client.websocket] is newer

    async def test_forget_removes_only_the_registered_connection(self, setup):
        client = setup.client()
        stale = WebSocketConnection(client.websocket)

        setup.sending.forget(stale)
        assert setup.connections[client.websocket] is client.connection

        setup.sending.forget(client.connection)
        assert setup.connections == {}


class TestCloseQuietly:
    async def test_the_close_carries_code_and_reason(self, setup):
        websocket = setup.make_websocket()

        with anyio.fail_after(5):
            await setup.sending.close_quietly(websocket, 1008, "too many frames")

        websocket.close.assert_awaited_once_with(code=1008, reason="too many frames")

    async def test_without_a_reason_only_the_code_is_sent(self, setup):
        websocket = setup.make_websocket()

        with anyio.fail_after(5):
            await setup.sending.close_quietly(websocket)

        websocket.close.assert_awaited_once_with(code=CLOSE_DROPPED)

    async def test_a_failing_close_is_only_logged(self, setup, websocket_logs):
        websocket = setup.make_websocket()
        websocket.close.side_effect = RuntimeError("gone")

        with anyio.fail_after(5):
            await setup.sending.close_quietly(websocket)

        assert (
            WS,
            logging.DEBUG,
            "Closing a dropped WebSocket client failed: RuntimeError('gone')",
        ) in websocket_logs()

    async def test_a_close_that_hangs_gives_up_after_the_send_timeout(self, setup):
        setup.bounds.send_timeout = 0.05
        websocket = setup.make_websocket()
        hung = asyncio.Event()

        async def hang(**kwargs: Any) -> None:
            await hung.wait()

        websocket.close.side_effect = hang

        with anyio.fail_after(2):
            await setup.sending.close_quietly(websocket)

        websocket.close.assert_awaited_once()


class TestStopSenders:
    async def test_the_senders_stop_and_the_outboxes_go(self, setup):
        client, idle = setup.client(), setup.client()
        client.writer.accepting = False
        client.gate.clear()
        setup.deliver(client, "e1")
        sender = client.connection.sender

        setup.sending.stop_senders()

        with anyio.fail_after(5):
            await asyncio.gather(sender, return_exceptions=True)
        assert sender.cancelled()
        assert (client.connection.sender, client.connection.outbox) == (None, None)
        assert (idle.connection.sender, idle.connection.outbox) == (None, None)
        # A client whose connection takes frames gets them directly again.
        client.writer.accepting = True
        setup.deliver(client, "e2")
        await setup.settle()
        assert client.log == [("direct", "e2")]
