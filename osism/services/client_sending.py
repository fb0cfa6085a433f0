"""How a frame reaches one client, and what happens to a client that fails.

A frame is written to the client's connection at once when the server lets
the app do that (see ``frame_writer``) and nothing of the client's waits:
the common case, a client that keeps up, costs no task and no wake-up.
Otherwise the frame joins the client's outbox, which a sender task of the
client's own drains; a client that falls too far behind, or whose send
fails or takes too long, is dropped there, and holds up nobody else.
"""

import asyncio
import logging
from collections import Counter
from typing import Dict, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from osism.services.client_outbox import ClientOutbox, OutboxFull
from osism.services.filter_groups import ConnectionRegistry
from osism.services.frame_writer import FrameBatch, FrameWriter
from osism.services.websocket_connection import WebSocketConnection

logger = logging.getLogger("osism.websocket")

# Close code sent to a client the server drops (RFC 6455: internal error).
CLOSE_DROPPED = 1011


class SendBounds(Protocol):
    """The bounds a new outbox takes (the manager's, from its settings)."""

    send_timeout: float
    max_pending: int


class ClientSending:
    def __init__(
        self, connections: ConnectionRegistry, stats: "Counter[str]", bounds: SendBounds
    ) -> None:
        self.connections = connections
        self.stats = stats
        self.bounds = bounds
        # The writers given frames since the last flush, each once.
        self._written: Dict[FrameWriter, None] = {}

    def deliver(self, connection: WebSocketConnection, frame: str) -> bool:
        """Send ``frame`` to the client; False if its outbox refused it.

        A frame written to the connection leaves in the next turn of the
        loop, with whatever else the client is given until then, in one
        write per client (one callback for all of them).
        """
        outbox = connection.outbox
        writer = connection.writer
        if writer is not None and (outbox is None or not outbox.pending):
            if writer.write_text_now(frame):
                if not self._written:
                    asyncio.get_running_loop().call_soon(self._flush)
                self._written[writer] = None
                return True
        if outbox is None:
            outbox = connection.outbox = ClientOutbox(
                connection.websocket.send_text,
                send_timeout=self.bounds.send_timeout,
                max_pending=self.bounds.max_pending,
            )
            connection.sender = asyncio.create_task(self._run_sender(connection))
        return outbox.put(frame)

    def deliver_batch(self, connection: WebSocketConnection, batch: FrameBatch) -> int:
        """Send the batch's frames to the client; how many it took.

        A client that keeps up gets them in one write, now; otherwise each
        goes as :meth:`deliver` sends it. A client that is no longer
        connected gets none (it went away after the frames were staged).
        """
        if self.connections.get(connection.websocket) is not connection:
            return 0
        outbox = connection.outbox
        writer = connection.writer
        if writer is not None and (outbox is None or not outbox.pending):
            if writer.write_frames_now(batch):
                return len(batch.texts)
        return sum(self.deliver(connection, text) for text in batch.texts)

    def _flush(self) -> None:
        written, self._written = self._written, {}
        for writer in written:
            writer.flush()

    def forget(self, connection: WebSocketConnection) -> None:
        if self.connections.get(connection.websocket) is connection:
            del self.connections[connection.websocket]

    async def close_quietly(
        self, websocket: WebSocket, code: int = CLOSE_DROPPED, reason: str = ""
    ) -> None:
        """Tell a dropped client so; it may be gone or stuck, which is fine."""
        try:
            async with asyncio.timeout(self.bounds.send_timeout):
                if reason:
                    await websocket.close(code=code, reason=reason)
                else:
                    await websocket.close(code=code)
        except Exception as e:
            logger.debug("Closing a dropped WebSocket client failed: %r", e)

    def stop_senders(self) -> None:
        for connection in self.connections.values():
            if connection.sender is not None:
                connection.sender.cancel()
            connection.sender = None
            connection.outbox = None

    async def _run_sender(self, connection: WebSocketConnection) -> None:
        """Drain one client's outbox; on the first failure, drop the client."""
        assert connection.outbox is not None
        timeout = connection.outbox.send_timeout
        try:
            await connection.outbox.drain_forever()
        except WebSocketDisconnect:
            self.forget(connection)
            logger.info("WebSocket client %s went away", connection.label)
            return
        except TimeoutError:
            level = logging.WARNING
            reason = f"a send took longer than {timeout:g} s"
        except OutboxFull as e:
            level = logging.WARNING
            reason = f"it fell behind: {e}"
        except Exception as e:
            level = logging.ERROR
            reason = f"error sending to it: {e!r}"
        self.forget(connection)
        self.stats["dropped"] += 1
        logger.log(level, "Dropped WebSocket client %s: %s", connection.label, reason)
        await self.close_quietly(connection.websocket)
