"""Doubles for sending frames to clients: a client whose server offers a
FrameWriter that can be told to refuse frames, and the ClientSending
that serves such clients."""

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any, List, Optional, Tuple

from osism.services.client_sending import ClientSending
from osism.services.filter_groups import ConnectionRegistry
from osism.services.frame_writer import DIRECT_WRITE, FrameBatch
from osism.services.websocket_connection import WebSocketConnection
from tests.harness.waiting import wait_until

# What reached the client, in order: ("direct", frame) or ("outbox", frame).
Log = List[Tuple[str, str]]


class SwitchableWriter:
    """A FrameWriter that accepts frames until told to refuse them (as a
    connection whose transport is paused does)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.accepting = True
        self.calls = 0
        self.batches = 0
        self.flushes = 0
        self.queued: List[str] = []

    def write_text_now(self, text: str) -> bool:
        self.calls += 1
        if not self.accepting:
            return False
        self.queued.append(text)
        return True

    def write_frames_now(self, batch: FrameBatch) -> bool:
        self.batches += 1
        if not self.accepting:
            return False
        self.queued.extend(batch.texts)
        self.flush()
        return True

    def flush(self) -> None:
        self.flushes += 1
        self.log.extend(("direct", text) for text in self.queued)
        self.queued.clear()


class Client:
    """A fake websocket offering a writer; its awaited send_text waits for
    ``gate`` (open by default) and records into the same log."""

    def __init__(self, make_websocket: Any, port: int) -> None:
        self.log: Log = []
        self.writer = SwitchableWriter(self.log)
        self.gate = asyncio.Event()
        self.gate.set()
        self.send_error: Optional[BaseException] = None
        self.websocket = make_websocket()
        self.websocket.client.host, self.websocket.client.port = "h", port
        self.websocket.scope = {"extensions": {DIRECT_WRITE: {"writer": self.writer}}}
        self.websocket.send_text.side_effect = self._send_text
        self.connection = WebSocketConnection(self.websocket)

    async def _send_text(self, text: str) -> None:
        await self.gate.wait()
        if self.send_error is not None:
            raise self.send_error
        self.log.append(("outbox", text))


class Setup:
    def __init__(self, make_websocket: Any) -> None:
        self.make_websocket = make_websocket
        self.connections = ConnectionRegistry()
        self.stats: "Counter[str]" = Counter()
        self.bounds = SimpleNamespace(send_timeout=5.0, max_pending=3)
        self.sending = ClientSending(self.connections, self.stats, self.bounds)
        self.tasks: List["asyncio.Task[None]"] = []
        self._ports = 0

    def client(self) -> Client:
        self._ports += 1
        client = Client(self.make_websocket, self._ports)
        self.connections[client.websocket] = client.connection
        return client

    async def settle(self) -> None:
        """One turn of the loop: ClientSending writes what it gave the
        connections in it (in one callback for all)."""
        await asyncio.sleep(0)

    async def stall(self, client: Client, frame: str) -> None:
        """Leave ``client`` with ``frame`` in its outbox, its send blocked,
        while its connection takes writes again."""
        client.writer.accepting = False
        client.gate.clear()
        self.deliver(client, frame)
        await wait_until(lambda: client.websocket.send_text.await_count == 1)
        client.writer.accepting = True

    def deliver(self, client: Client, frame: str) -> bool:
        delivered = self.sending.deliver(client.connection, frame)
        sender = client.connection.sender
        if sender is not None and sender not in self.tasks:
            self.tasks.append(sender)
        return delivered
