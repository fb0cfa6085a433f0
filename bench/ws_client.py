"""The receiving side of the benchmark: one process holding every client.

Run by bench/pipeline.py, not by hand. It opens the WebSocket clients,
prints one JSON line ``{"ready": ...}``, then reads all sockets with one
selector until every client has all events, or until the pipeline wrote
``published`` on standard input and no frame came for ``--idle-timeout``
seconds, or ``--deadline`` passed. It prints the result as one JSON line and
writes every event's latency and then every event's send time (ns, int64,
client after client, in receive order) to ``--latency-file``.

With ``--stopped-client`` one more client completes the handshake with a
small SO_RCVBUF and is never read while the others are; at the end whatever
the server left in its socket is read, to see whether a close frame (and
which code) or the end of the connection came.
"""

import argparse
import json
import os
import resource
import select
import socket
import sys
import time
from typing import Any, Dict, List, Optional

from ws_protocol import FrameStream, ReceiveStats, connect

RECV_BYTES = 1 << 18
STOPPED_RCVBUF = 4096
STOPPED_DRAIN_SECONDS = 5.0
STOPPED_QUIET_SECONDS = 1.0


def open_stream(args: argparse.Namespace, rcvbuf: Optional[int] = None) -> FrameStream:
    sock, handshake = connect(
        args.host, args.port, args.path, deflate=args.compression, rcvbuf=rcvbuf
    )
    if args.compression and not handshake.deflate:
        raise SystemExit("the server did not accept permessage-deflate")
    return FrameStream(sock, handshake, ReceiveStats(args.events))


class Receiver:
    """Reads every active client's socket; knows when the run is over.

    Uses epoll directly and keeps the per-wake-up work small (no selectors
    wrapper, completion tracked incrementally): on two shared cores every
    microsecond spent here is taken from the server being measured.
    """

    def __init__(self, streams: List[FrameStream], args: argparse.Namespace) -> None:
        self.events = args.events
        self.idle_ns = int(args.idle_timeout * 1e9)
        self.deadline_ns = time.monotonic_ns() + int(args.deadline * 1e9)
        self.pause_s = args.pause_ms / 1000
        self.published = False
        self.stop_asked = False
        self.ended_by = ""
        self.poll = select.epoll()
        self.by_fd: Dict[int, FrameStream] = {}
        for stream in streams:
            stream.sock.setblocking(False)
            self.by_fd[stream.sock.fileno()] = stream
            self.poll.register(stream.sock.fileno(), select.EPOLLIN)
        self.unfinished = {s for s in streams if not self._finished(s)}
        self.stdin = sys.stdin.fileno()
        self.poll.register(self.stdin, select.EPOLLIN)
        self._stdin_text = b""
        self.wakeups = 0
        self.recvs = 0

    def run(self) -> None:
        last_frame_ns = time.monotonic_ns()
        poll = self.poll.poll
        by_fd = self.by_fd
        pause_s = self.pause_s
        while not self._over(last_frame_ns):
            self.wakeups += 1
            for fd, _ in poll(0.1):
                stream = by_fd.get(fd)
                if stream is None:
                    self._read_commands()
                else:
                    last_frame_ns = self._read(stream) or last_frame_ns
            if pause_s:
                # Let frames gather: one wake-up then reads many frames on
                # every socket instead of one or two on one socket.
                time.sleep(pause_s)

    def _finished(self, stream: FrameStream) -> bool:
        return stream.closed or stream.stats.received >= self.events

    def _read(self, stream: FrameStream) -> int:
        """Read one chunk; its receive time (ns), or 0 if nothing came."""
        try:
            chunk = stream.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return 0
        except OSError:
            chunk = b""
        if not chunk:
            stream.closed = True
            self._forget(stream)
            return 0
        now_ns = time.monotonic_ns()
        self.recvs += 1
        stream.feed(chunk, now_ns)
        if stream.closed:
            self._forget(stream)
        elif stream.stats.received >= self.events:
            self.unfinished.discard(stream)
        return now_ns

    def _forget(self, stream: FrameStream) -> None:
        self.poll.unregister(stream.sock.fileno())
        del self.by_fd[stream.sock.fileno()]
        self.unfinished.discard(stream)

    def _read_commands(self) -> None:
        data = os.read(self.stdin, 4096)
        if not data:  # the pipeline went away
            self.stop_asked = True
            self.poll.unregister(self.stdin)
            return
        self._stdin_text += data
        *lines, self._stdin_text = self._stdin_text.split(b"\n")
        for line in lines:
            if line == b"published":
                self.published = True
            elif line == b"stop":
                self.stop_asked = True

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


def drain_stopped(stream: FrameStream) -> Dict[str, Any]:
    """Read what the server left for the stopped client: until the end of the
    connection, a close frame, or a quiet spell (the server still sends)."""
    sock = stream.sock
    sock.settimeout(STOPPED_QUIET_SECONDS)
    deadline = time.monotonic() + STOPPED_DRAIN_SECONDS
    read_bytes = 0
    eof = False
    while time.monotonic() < deadline and not stream.closed:
        try:
            chunk = sock.recv(RECV_BYTES)
        except socket.timeout:
            break
        except OSError:
            chunk = b""
        if not chunk:
            eof = True
            break
        read_bytes += len(chunk)
        stream.feed(chunk, time.monotonic_ns())
    return {
        "frames_received": stream.stats.received,
        "last_sent_ns": stream.stats.last_sent_ns,
        "bytes_left_in_socket": read_bytes,
        "close_code": stream.stats.close_code,
        "connection_ended": eof or stream.closed,
        "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
    }


def client_result(stats: ReceiveStats, offset: int) -> Dict[str, Any]:
    return {
        "received": stats.received,
        "duplicates": stats.duplicates,
        "out_of_order": stats.out_of_order,
        "foreign_frames": stats.foreign,
        "compressed": stats.compressed,
        "first_ns": stats.first_ns,
        "last_ns": stats.last_ns,
        "close_code": stats.close_code,
        "latency_offset": offset,
    }


def write_latencies(path: str, streams: List[FrameStream]) -> List[int]:
    """Write all latencies, then all send times, to ``path``; the offset of
    each client's block."""
    offsets = []
    total = 0
    with open(path, "wb") as f:
        for stream in streams:
            offsets.append(total)
            stream.stats.latencies.tofile(f)
            total += len(stream.stats.latencies)
        for stream in streams:
            stream.stats.sent.tofile(f)
    return offsets


def emit(message: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/events/openstack")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--stopped-client", action="store_true")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--idle-timeout", type=float, default=5.0)
    parser.add_argument("--pause-ms", type=float, default=0.0)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--latency-file", required=True)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    streams = [open_stream(args) for _ in range(args.clients)]
    stopped = open_stream(args, STOPPED_RCVBUF) if args.stopped_client else None
    emit({"ready": True, "pid": os.getpid()})
    receiver = Receiver(streams, args)
    receiver.run()
    stopped_result = drain_stopped(stopped) if stopped is not None else None
    offsets = write_latencies(args.latency_file, streams)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit(
        {
            "ended_by": receiver.ended_by,
            "clients": [
                client_result(s.stats, offset) for s, offset in zip(streams, offsets)
            ],
            "stopped_client": stopped_result,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "cpu_sys_s": usage.ru_stime,
            "wakeups": receiver.wakeups,
            "recvs": receiver.recvs,
        }
    )
    for stream in streams + ([stopped] if stopped else []):
        stream.sock.close()


if __name__ == "__main__":
    main()
