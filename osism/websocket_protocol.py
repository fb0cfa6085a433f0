"""uvicorn's WebSocket protocol, writing each client's frames in batches.

uvicorn writes every frame to the socket as it is sent: one ``send()``
system call per frame per client, which was the largest single cost of
streaming (about a third of the server's CPU as fast as possible). Here a
frame sent by the application is only encoded into the connection's output
(the websockets protocol object keeps it in order there); the output is
written once per turn of the event loop. Frames a client's sender task sends
in one go therefore leave in one write, and anything uvicorn itself writes
(pong, ping, close) takes the waiting frames along in front of it, so the
order on the wire never changes.

Back-pressure is unchanged: a send still waits while the transport is paused
because the client does not read.

This subclasses uvicorn's own protocol and uses its attributes (``conn``,
``transport``, ``writable`` ...); uvicorn is pinned in the Pipfile, and the
tests in tests/unit/test_websocket_protocol.py drive this class through a
real handshake so that an upgrade that changes them fails there.
"""

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import (
    WebSocketsSansIOProtocol,
)
from websockets.exceptions import InvalidState


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as ``ws=`` to uvicorn: data frames are written once per loop turn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flush_scheduled = False

    async def send(self, message: Any) -> None:
        if not self._is_data_frame(message):
            # Accept, close and HTTP responses: uvicorn's own path, behind
            # the frames that are still waiting.
            self.flush()
            await super().send(message)
            return
        if not self.writable.is_set():
            await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        try:
            text = message.get("text")
            if text is not None:
                self.conn.send_text(text.encode())
            else:
                self.conn.send_binary(message["bytes"])
        except InvalidState:
            raise ClientDisconnected() from None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    @property
    def flush_pending(self) -> bool:
        """True while a write is scheduled for the next turn of the loop."""
        return self._flush_scheduled

    def flush(self) -> None:
        """Write whatever the connection has to send, in one write."""
        self._flush_scheduled = False
        output = self.conn.data_to_send()
        if not output or self.disconnected or self.transport.is_closing():
            return
        self.transport.write(b"".join(output))

    def _is_data_frame(self, message: Any) -> bool:
        return (
            message["type"] == "websocket.send"
            and self.handshake_complete
            and not self.close_sent
            and self.initial_response is None
        )
