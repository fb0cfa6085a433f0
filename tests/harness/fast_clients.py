"""Many WebSocket clients in one process, as cheap per frame as the library
allows: plain sockets on one epoll, the protocol (handshake, pings, close,
fragments, permessage-deflate) kept by the `websockets` library's sans-I/O
ClientProtocol, plain text frames cut out of the stream here, no event
loop, no task per client.

Made for the benchmark, where the receiving side shares two cores with the
server it measures and must not be the bottleneck, and for tests that need a
client that stops reading: a socket whose first frames must stay unread in
the kernel (a library's asyncio client would go on reading into buffers of
its own).
"""

import os
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from websockets.client import ClientProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.harness import EVENTS_PATH, HarnessError
from tests.harness.numbered_events import ReceiveStats
from tests.harness.ports import LOOPBACK

RECV_BYTES = 1 << 18
TEXT, CLOSE = Opcode.TEXT, Opcode.CLOSE
HANDSHAKE_LIMIT = 16384
# First byte of a frame that is a whole text message: FIN, no RSV bit, TEXT.
WHOLE_TEXT = 0x80 | TEXT.value
FIN = 0x80
MASKED = 0x80
OPCODE = 0x0F
CONTROL = 0x08  # opcodes from here on are control frames


class _CountCompressed(Extension):
    """Wraps the negotiated permessage-deflate to count the messages that
    came compressed (RSV1 set on their first frame)."""

    def __init__(self, inner: Extension) -> None:
        self.inner = inner
        self.name = inner.name
        self.count = 0

    def decode(self, frame: Frame, *, max_size: Optional[int] = None) -> Frame:
        if frame.rsv1:
            self.count += 1
        return self.inner.decode(frame, max_size=max_size)

    def encode(self, frame: Frame) -> Frame:
        return self.inner.encode(frame)


@dataclass
class ReadBack:
    """What :meth:`Connection.read_until_closed` found in the socket."""

    texts: List[bytes] = field(default_factory=list)
    bytes_read: int = 0
    close_code: Optional[int] = None
    eof: bool = False  # the server ended the TCP connection
    quiet: bool = False  # nothing came for the quiet time


class Connection:
    """One client connection: a socket and the ClientProtocol that frames it."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.close_code: Optional[int] = None
        self._deflate: Optional[_CountCompressed] = None
        # The start of a frame whose rest has not come yet (see feed).
        self._partial = b""
        # A fragmented message is being received: its frames go to the
        # protocol until its last one.
        self._in_message = False
        self._protocol_only = False
        if protocol.extensions:
            self._deflate = _CountCompressed(protocol.extensions[0])
            protocol.extensions = [self._deflate]

    @classmethod
    def open(
        cls,
        port: int,
        *,
        host: str = LOOPBACK,
        path: str = EVENTS_PATH,
        deflate: bool = False,
        rcvbuf: Optional[int] = None,
        timeout: float = 5.0,
    ) -> "Connection":
        """Connect and complete the opening handshake, reading nothing past
        the server's response. ``rcvbuf`` sets SO_RCVBUF before connecting,
        which is when it limits the TCP window the server may fill."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            protocol = ClientProtocol(
                parse_uri(f"ws://{host}:{port}{path}"),
                extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
            )
            protocol.send_request(protocol.connect())
            sock.sendall(b"".join(protocol.data_to_send()))
            protocol.receive_data(_response_head(sock, time.monotonic() + timeout))
            response = protocol.events_received()
            if protocol.state is not State.OPEN:
                raise HarnessError(
                    f"WebSocket upgrade refused: {protocol.handshake_exc!r} {response}"
                )
            if deflate and not protocol.extensions:
                raise HarnessError("the server did not accept permessage-deflate")
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        assert isinstance(response[0], Response)
        return cls(sock, protocol)

    @property
    def compressed_messages(self) -> int:
        return 0 if self._deflate is None else self._deflate.count

    def feed(self, data: bytes) -> List[Frame]:
        """The complete frames in received bytes, in order.

        The protocol's parser costs about 4 us per frame, a third of the
        receiver's CPU with 1,000 clients: the receiver then competes with
        the server it measures for the same two cores. So a frame that is a
        whole, unmasked, uncompressed text message (what the server sends
        for every event) is cut out of the bytes here; every other frame
        (control frames, fragments, anything the protocol must check or
        answer) goes to the protocol whole, at a frame boundary, so its
        parser sees the same stream minus the plain text frames.
        """
        if self._deflate is not None or self._protocol_only:
            return self._feed_protocol(data)
        buffer = self._partial + data if self._partial else data
        frames: List[Frame] = []
        start, end = 0, len(buffer)
        while end - start >= 2:
            first, length = buffer[start], buffer[start + 1]
            head = 2
            if length & MASKED:
                # Not from a server that follows RFC 6455: the protocol
                # fails the connection, and has every byte from here on.
                self._protocol_only = True
                frames += self._feed_protocol(buffer[start:])
                start = end
                break
            if length == 126:
                head = 4
            elif length == 127:
                head = 10
            if end - start < head:
                break
            if head > 2:
                length = int.from_bytes(buffer[start + 2 : start + head], "big")
            stop = start + head + length
            if stop > end:
                break
            if first == WHOLE_TEXT and not self._in_message and self.close_code is None:
                frames.append(Frame(TEXT, buffer[start + head : stop]))
            else:
                if first & OPCODE < CONTROL:
                    self._in_message = not first & FIN
                frames += self._feed_protocol(buffer[start:stop])
            start = stop
        self._partial = buffer[start:]
        return frames

    def _feed_protocol(self, data: bytes) -> List[Frame]:
        """Hand bytes to the protocol; the complete frames in them. What the
        protocol has to say back (pongs, the close reply) is sent."""
        protocol = self.protocol
        protocol.receive_data(data)
        frames: List[Frame] = protocol.events_received()  # type: ignore[assignment]
        replies = protocol.data_to_send()
        if replies:
            try:
                self.sock.sendall(b"".join(replies))
            except OSError:
                # The server is gone (the read side will tell), or the send
                # buffer of this non-blocking socket is full: a pong lost.
                pass
        if protocol.close_rcvd is not None:
            self.close_code = protocol.close_rcvd.code
        return frames

    def read_until_closed(self, quiet_s: float, total_s: float) -> ReadBack:
        """Read (blocking) what the server sends: until its close frame, the
        end of the connection, nothing for ``quiet_s`` or ``total_s`` in all.
        Text frames are returned as they came, not decoded."""
        found = ReadBack()
        self.sock.settimeout(quiet_s)
        deadline = time.monotonic() + total_s
        while self.close_code is None and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(RECV_BYTES)
            except socket.timeout:
                found.quiet = True
                break
            except OSError:
                chunk = b""
            if not chunk:
                found.eof = True
                break
            found.bytes_read += len(chunk)
            found.texts += [
                bytes(f.data) for f in self.feed(chunk) if f.opcode is Opcode.TEXT
            ]
        found.close_code = self.close_code
        return found

    def close(self) -> None:
        self.sock.close()


def _response_head(sock: socket.socket, deadline: float) -> bytes:
    """The HTTP response to the upgrade, and not one byte more: peeked at,
    then taken up to its blank line, so a client that is not to read leaves
    every frame in its socket."""
    while True:
        peeked = sock.recv(HANDSHAKE_LIMIT, socket.MSG_PEEK)
        if not peeked:
            raise HarnessError("the server closed the connection during the upgrade")
        end = peeked.find(b"\r\n\r\n")
        if end >= 0:
            wanted, head = end + 4, b""
            while len(head) < wanted:
                head += sock.recv(wanted - len(head))
            return head
        if len(peeked) >= HANDSHAKE_LIMIT or time.monotonic() > deadline:
            raise HarnessError(f"no complete upgrade response: {peeked[:200]!r}")
        time.sleep(0.001)  # part of the head came; the rest is on its way


@dataclass
class Client:
    """A connection that counts the numbered events it receives."""

    connection: Connection
    stats: ReceiveStats
    closed: bool = False


class Receiver:
    """Reads every client's socket on one epoll until each has all the
    numbered events, or until publishing is over (``published`` on the
    control file) and nothing came for ``idle_timeout``, or the deadline
    passed, or ``stop`` came on the control file.

    Each chunk read is timestamped once, so every frame in it gets the same
    receive time. With ``pause_s``, the loop sleeps that long after each
    wake-up: frames gather, and one wake-up reads many frames on every
    socket instead of one or two on one (each wake-up costs ~12 us of CPU,
    mostly the kernel's, which on two shared cores is taken from the server
    being measured).
    """

    def __init__(
        self,
        clients: Sequence[Client],
        events: int,
        idle_timeout: float,
        deadline: float,
        pause_s: float = 0.0,
        control_fd: Optional[int] = None,
    ) -> None:
        self.events = events
        self.idle_ns = int(idle_timeout * 1e9)
        self.deadline_ns = time.monotonic_ns() + int(deadline * 1e9)
        self.pause_s = pause_s
        self.published = False
        self.stop_asked = False
        self.ended_by = ""
        self.wakeups = 0
        self.recvs = 0
        # Every read lands here first: recv() would allocate RECV_BYTES for
        # each chunk and shrink it again (12 us of a 16 us read of 1.6 KB).
        self._buffer = bytearray(RECV_BYTES)
        self._view = memoryview(self._buffer)
        self.poll = select.epoll(len(clients) + 1)
        self.by_fd: Dict[int, Client] = {}
        for client in clients:
            sock = client.connection.sock
            sock.setblocking(False)
            self.by_fd[sock.fileno()] = client
            self.poll.register(sock.fileno(), select.EPOLLIN)
        self.unfinished = {c.connection.sock.fileno() for c in clients}
        self.control_fd = control_fd
        self._control_text = b""
        if control_fd is not None:
            self.poll.register(control_fd, select.EPOLLIN)

    def run(self) -> None:
        last_frame_ns = time.monotonic_ns()
        poll, by_fd, pause_s = self.poll.poll, self.by_fd, self.pause_s
        maxevents = len(by_fd) + 1
        while not self._over(last_frame_ns):
            self.wakeups += 1
            for fd, _ in poll(0.1, maxevents):
                client = by_fd.get(fd)
                if client is None:
                    self._read_control()
                else:
                    last_frame_ns = self._read(fd, client) or last_frame_ns
            if pause_s:
                time.sleep(pause_s)

    def _read(self, fd: int, client: Client) -> int:
        """Read one chunk; its receive time (ns), or 0 if nothing came."""
        try:
            size = client.connection.sock.recv_into(self._buffer)
        except BlockingIOError:
            return 0
        except OSError:
            size = 0
        chunk = self._view[:size].tobytes()
        if not chunk:
            self._forget(fd, client)
            return 0
        now_ns = time.monotonic_ns()
        self.recvs += 1
        stats = client.stats
        received_before, count = stats.received, stats.count
        for frame in client.connection.feed(chunk):
            if frame.opcode is TEXT:
                count(frame.data, now_ns)
            elif frame.opcode is CLOSE:
                self._forget(fd, client)
        stats.arrived(received_before, now_ns)
        if stats.received >= self.events:
            self.unfinished.discard(fd)
        return now_ns

    def _forget(self, fd: int, client: Client) -> None:
        client.closed = True
        if self.by_fd.pop(fd, None) is not None:
            self.poll.unregister(fd)
        self.unfinished.discard(fd)

    def _read_control(self) -> None:
        assert self.control_fd is not None
        data = os.read(self.control_fd, 4096)
        if not data:  # the parent went away
            self.stop_asked = True
            self.poll.unregister(self.control_fd)
            return
        self._control_text += data
        *lines, self._control_text = self._control_text.split(b"\n")
        self.published |= b"published" in lines
        self.stop_asked |= b"stop" in lines

    def _over(self, last_frame_ns: int) -> bool:
        if not self.unfinished:
            self.ended_by = "complete"
            return True
        now = time.monotonic_ns()
        if self.published and now - last_frame_ns > self.idle_ns:
            self.ended_by = "idle timeout"
        elif now > self.deadline_ns:
            self.ended_by = "deadline"
        elif self.stop_asked:
            self.ended_by = "stopped"
        return bool(self.ended_by)
