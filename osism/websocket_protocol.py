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
because the client does not read. A close does not wait: it is queued behind
the unread frames, and a client that does not answer it in time loses its
connection (see ``_close``).

This subclasses uvicorn's own protocol and uses its attributes (``conn``,
``transport``, ``writable`` ...); uvicorn is pinned in the Pipfile, and the
tests in tests/unit/test_websocket_protocol.py drive this class through a
real handshake so that an upgrade that changes them fails there.
"""

import socket
import struct
from typing import Any, Dict, Tuple, Type

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import (
    WebSocketsSansIOProtocol,
)
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from osism.connection_waits import ReceiveQueue, WritableFlag
from osism.services.frame_writer import DIRECT_WRITE, FrameBatch


class TextFrames:
    """Text frames encoded once, however many clients get them.

    Server frames are not masked, so without compression the bytes of a
    text frame depend on its text alone. The WebSocket manager serialises
    each event once and hands the same ``str`` object to every client that
    gets it; the frames are kept by that object's identity, the newest
    first to stay: at most ``size`` of them, of together at most about
    ``max_bytes`` (a frame and its text). A batch of events fans out to
    every client before the next one starts, so this only needs to hold a
    batch's frames (256 events of 8 KiB in the default bound); a batch of
    larger events is encoded again for some clients instead of being kept
    in memory long after it was sent. A frame larger than the bound alone
    is not kept.
    """

    def __init__(self, size: int = 1024, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes
        # The sum of the kept frames' and texts' lengths.
        self.nbytes = 0
        self._frames: Dict[int, Tuple[str, bytes]] = {}

    def encode(self, text: str) -> bytes:
        kept = self._frames.get(id(text))
        if kept is not None and kept[0] is text:
            return kept[1]
        frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
        nbytes = len(text) + len(frame)
        if nbytes > self.max_bytes:
            return frame
        frames = self._frames
        while frames and (
            len(frames) >= self.size or self.nbytes + nbytes > self.max_bytes
        ):
            oldest_text, oldest_frame = frames.pop(next(iter(frames)))
            self.nbytes -= len(oldest_text) + len(oldest_frame)
        # The text is kept with its frame, so its id is not reused meanwhile.
        frames[id(text)] = (text, frame)
        self.nbytes += nbytes
        return frame


# SO_LINGER on, with a linger time of 0 seconds.
_NO_LINGER = struct.pack("ii", 1, 0)


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as ``ws=`` to uvicorn: data frames are written once per loop turn,
    and a client that does not answer a close loses its connection."""

    # Seconds a client has to answer the server's close (uvicorn's default).
    answer_close_within = 10.0
    # Shared by every connection of the process.
    text_frames = TextFrames()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = self.answer_close_within
        self._flush_scheduled = False
        # uvicorn's asyncio.Queue and Event, lighter (connection_waits.py).
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = WritableFlag()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        if message["type"] != "websocket.send" or not self._is_open():
            # Accept, close and HTTP responses go uvicorn's way, behind the
            # frames that are still waiting.
            self.flush()
            if message["type"] == "websocket.close" and self._is_open():
                await self._close(message)
            else:
                await super().send(message)
            if self.handshake_complete:
                # The handshake's request and response (their headers are in
                # the scope) are of no more use: a few KiB per idle client.
                # websockets' parser keeps the request for the connection's
                # life, so its headers are emptied too.
                request = self.__dict__.pop("request", None)
                if request is not None:
                    request.headers.clear()
                self.__dict__.pop("response", None)
            return
        if not self.writable.is_set():
            await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        text = message.get("text")
        try:
            if text is None:
                self.conn.send_binary(message["bytes"])
            elif not self._write_text(text):
                # Compressed per connection, or refused: websockets' way.
                self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self._schedule_flush()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            # The app may write event frames without awaiting send (see
            # osism.services.frame_writer).
            scope["extensions"][DIRECT_WRITE] = {"writer": self}

    def write_frames_now(self, batch: FrameBatch) -> bool:
        """Write a batch of text frames now, behind what was sent before,
        in one write; False when the connection cannot take them now (see
        :meth:`write_text_now`). The frames' bytes are made once per batch,
        for every client that gets it."""
        if not self._takes_frames_now():
            return False
        wire = batch.wire
        if wire is None:
            encode = self.text_frames.encode
            wire = batch.wire = b"".join([encode(text) for text in batch.texts])
        output = self.conn.data_to_send()
        if output:
            output.append(wire)
            wire = b"".join(output)
        # A transport that is closing takes nothing more, as in flush: the
        # client is going away and resumes elsewhere.
        if not self.transport.is_closing():
            self.transport.write(wire)
        return True

    def write_text_now(self, text: str) -> bool:
        """Queue a text frame without waiting, behind what was sent before,
        for the caller's :meth:`flush` (one write for all it queued); False
        when the connection cannot take it now: not open (yet), the
        transport paused (the client does not read), or compressed."""
        if not self._takes_frames_now():
            return False
        self.conn.writes.append(self.text_frames.encode(text))
        return True

    def _takes_frames_now(self) -> bool:
        conn = self.conn
        return not (
            self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or self.disconnected
            or not self.writable.is_set()
            or conn.extensions
            or conn.state is not State.OPEN
        )

    def _write_text(self, text: str) -> bool:
        """Add an uncompressed text frame to the output; False if the
        connection compresses or is not open."""
        if self.conn.extensions or self.conn.state is not State.OPEN:
            return False
        # What conn.send_text would add to the output, encoded once for all
        # the clients that get the same event frame.
        self.conn.writes.append(self.text_frames.encode(text))
        return True

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    async def _close(self, message: Any) -> None:
        """Start the closing handshake; end the connection if it does not finish.

        uvicorn waits until the transport takes more data before it sends
        the close frame, and afterwards closes the transport, which waits
        for its buffer to drain. A client that has stopped reading (the one
        the WebSocket manager drops) would keep its connection for good.
        Here the close frame is queued behind the frames the client has not
        read even while writes are paused, and a client that has not
        answered it within ``close_timeout`` seconds loses its connection.
        """
        if self.writable.is_set():
            await super().send(message)
        else:
            code = message.get("code", 1000)
            reason = message.get("reason") or ""
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": code, "reason": reason}
            )
            self.conn.send_close(code, reason)
            self.flush()
            self.close_sent = True
            if self.read_paused:
                # The client's answer to the close must be read.
                self.read_paused = False
                self.transport.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(self.close_timeout, self._cut_off)

    def _cut_off(self) -> None:
        """End the connection at once, with a reset.

        Aborting alone leaves the kernel trying to deliver the unread
        frames to a client that takes none, for minutes; a zero linger time
        makes closing the socket discard them.
        """
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        self.transport.abort()

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

    def _is_open(self) -> bool:
        """Handshake done, no close sent, not answering with plain HTTP."""
        return (
            self.handshake_complete
            and not self.close_sent
            and self.initial_response is None
        )


def websocket_protocol(close_timeout: float) -> Type[BatchingWebSocketProtocol]:
    """The class to pass as ``ws=`` to uvicorn, with WEBSOCKET_CLOSE_TIMEOUT."""
    return type(
        BatchingWebSocketProtocol.__name__,
        (BatchingWebSocketProtocol,),
        {"answer_close_within": close_timeout},
    )
