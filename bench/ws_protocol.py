"""A minimal RFC 6455 WebSocket client, as cheap per frame as Python allows.

Only what the benchmark's receiving side needs: the HTTP upgrade handshake
(optionally offering permessage-deflate, RFC 7692), parsing the server's
unmasked frames out of large recv() chunks, answering pings, and noting the
close frame. Event frames are not decoded as JSON: the sequence number and
send time are pulled out with one regular-expression search, after checking
that the frame is an event of the type the benchmark publishes.
"""

import base64
import hashlib
import os
import re
import socket
import struct
import zlib
from array import array
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFLATE_TAIL = b"\x00\x00\xff\xff"
HANDSHAKE_LIMIT = 16384

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9

EVENT_TYPE = "baremetal.node.power_set.end"
# The server serialises with json.dumps defaults (", " and ": "), keys in
# the order id, timestamp, event_type, ...; the payload's keys come first in
# "data", in the order the publisher wrote them.
_EVENT_START = b'{"id": "'
_EVENT_TYPE = b'"event_type": "' + EVENT_TYPE.encode() + b'"'
_SEQ_AND_TIME = re.compile(rb'"bench_seq": (\d+), "bench_sent_ns": (\d+)')


class ProtocolError(Exception):
    """The server said something a WebSocket client must not accept."""


@dataclass
class Handshake:
    leftover: bytes
    deflate: bool
    server_no_context_takeover: bool


def connect(
    host: str,
    port: int,
    path: str,
    *,
    deflate: bool = False,
    rcvbuf: Optional[int] = None,
    timeout: float = 5.0,
) -> Tuple[socket.socket, Handshake]:
    """Open a WebSocket; ``rcvbuf`` sets SO_RCVBUF before connecting, which is
    when it limits the TCP window the server may fill."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(_upgrade_request(host, port, path, key, deflate))
    head, leftover = _read_response_head(sock)
    handshake = _check_response(head, key, leftover)
    sock.settimeout(None)
    return sock, handshake


def _upgrade_request(
    host: str, port: int, path: str, key: bytes, deflate: bool
) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response_head(sock: socket.socket) -> Tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ProtocolError("connection closed during the handshake")
        data += chunk
        if len(data) > HANDSHAKE_LIMIT:
            raise ProtocolError("handshake response too long")
    head, _, leftover = data.partition(b"\r\n\r\n")
    return head, leftover


def _check_response(head: bytes, key: bytes, leftover: bytes) -> Handshake:
    status, *header_lines = head.decode("latin-1").split("\r\n")
    if status.split()[1:2] != ["101"]:
        raise ProtocolError(f"upgrade refused: {status!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    if headers.get("sec-websocket-accept") != accept:
        raise ProtocolError("wrong Sec-WebSocket-Accept")
    extension = headers.get("sec-websocket-extensions", "")
    params = [p.strip() for p in extension.split(";")]
    return Handshake(
        leftover=leftover,
        deflate=params[0] == "permessage-deflate",
        server_no_context_takeover="server_no_context_takeover" in params,
    )


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask; RFC 6455 5.3)."""
    if len(payload) > 125:
        raise ValueError("only short control frames are sent")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


@dataclass
class ReceiveStats:
    """What one client received; ``seen`` marks each sequence number once."""

    events: int
    seen: bytearray = field(init=False)
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    foreign: int = 0  # complete frames that were not the benchmark's events
    first_ns: int = 0
    last_ns: int = 0
    last_seq: int = -1
    last_sent_ns: int = 0  # bench_sent_ns of the last event received
    close_code: Optional[int] = None
    compressed: int = 0  # messages that came with permessage-deflate
    latencies: "array[int]" = field(default_factory=lambda: array("q"))
    sent: "array[int]" = field(default_factory=lambda: array("q"))

    def __post_init__(self) -> None:
        self.seen = bytearray(self.events)


class FrameStream:
    """Turns the bytes one socket received into counted event frames."""

    def __init__(
        self,
        sock: socket.socket,
        handshake: Handshake,
        stats: ReceiveStats,
    ) -> None:
        self.sock = sock
        self.stats = stats
        self.closed = False
        self._buffer = b""
        self._fragments: List[bytes] = []
        self._fragments_compressed = False
        self._fragments_text = False
        self._deflate = handshake.deflate
        self._reset_decompressor = handshake.server_no_context_takeover
        self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        if handshake.leftover:
            self.feed(handshake.leftover, 0)

    def feed(self, data: bytes, now_ns: int) -> None:
        """Handle every complete frame in the received bytes; keep the rest.

        ``now_ns`` (time.monotonic_ns() when the chunk was read) is the
        receive time of every frame in it.
        """
        buf = self._buffer + data if self._buffer else data
        end = len(buf)
        pos = 0
        while end - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length & 0x80:
                raise ProtocolError("the server masked a frame")
            start = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            stop = start + length
            if stop > end:
                break
            if b0 == 0x81:  # FIN, uncompressed text: the common case
                self._event(buf, start, stop, now_ns)
            else:
                self._other_frame(b0, buf[start:stop], now_ns)
            pos = stop
        self._buffer = buf[pos:]

    def _event(self, buf: bytes, start: int, stop: int, now_ns: int) -> None:
        stats = self.stats
        match = None
        if (
            buf.startswith(_EVENT_START, start)
            and buf.find(_EVENT_TYPE, start, stop) > 0
        ):
            match = _SEQ_AND_TIME.search(buf, start, stop)
        if match is None:  # a heartbeat, a reply, or not an event at all
            stats.foreign += 1
            return
        seq = int(match.group(1))
        if seq >= stats.events or stats.seen[seq]:
            stats.duplicates += 1
            return
        stats.seen[seq] = 1
        stats.received += 1
        if seq < stats.last_seq:
            stats.out_of_order += 1
        stats.last_seq = seq
        sent_ns = int(match.group(2))
        stats.last_sent_ns = sent_ns
        stats.latencies.append(now_ns - sent_ns)
        stats.sent.append(sent_ns)
        if not stats.first_ns:
            stats.first_ns = now_ns
        stats.last_ns = now_ns

    def _other_frame(self, b0: int, payload: bytes, now_ns: int) -> None:
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        if opcode == OP_PING:
            self.sock.sendall(masked_frame(0xA, payload))
        elif opcode == OP_CLOSE:
            self.closed = True
            if len(payload) >= 2:
                self.stats.close_code = struct.unpack("!H", payload[:2])[0]
            else:
                self.stats.close_code = 1005  # "no status received"
        elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            self._data_frame(b0, opcode, fin, payload, now_ns)

    def _data_frame(
        self, b0: int, opcode: int, fin: bool, payload: bytes, now_ns: int
    ) -> None:
        if opcode != OP_CONTINUATION:
            self._fragments = []
            self._fragments_compressed = bool(b0 & 0x40)
            if b0 & 0x40 and not self._deflate:
                raise ProtocolError("compressed frame without permessage-deflate")
            self._fragments_text = opcode == OP_TEXT
        self._fragments.append(payload)
        if not fin:
            return
        message = b"".join(self._fragments)
        self._fragments = []
        if self._fragments_compressed:
            message = self._inflate(message)
            self.stats.compressed += 1
        if self._fragments_text:
            self._event(message, 0, len(message), now_ns)
        else:
            self.stats.foreign += 1

    def _inflate(self, message: bytes) -> bytes:
        """RFC 7692 7.2.2: append the empty stored block's tail, inflate."""
        data = self._decompressor.decompress(message + DEFLATE_TAIL)
        if self._reset_decompressor:
            self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        return data
