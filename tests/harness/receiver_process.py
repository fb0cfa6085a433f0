"""The benchmark's receiving side: one process holding every client.

``python -m tests.harness.receiver_process --port P --events N ...`` opens
the clients (tests/harness/fast_clients.py), prints ``{"ready": true, ...}``,
reads until the Receiver says the run is over (it reads ``published`` and
``stop`` lines on stdin), and prints the result as one JSON line. It writes
every event's latency and then every event's send time (ns, int64, client
after client, in receive order) to ``--latency-file``.

With ``--stopped-client`` one more client completes the handshake with a
small SO_RCVBUF and is not read while the others are; at the end whatever
the server left in its socket is read, to see whether a close frame (and
which code) or the end of the connection came.
"""

import argparse
import json
import os
import resource
import socket
import sys
import time
from typing import Any, Dict, List, Optional

from tests.harness.fast_clients import Client, Connection, Receiver
from tests.harness.numbered_events import ReceiveStats

STOPPED_RCVBUF = 4096
STOPPED_DRAIN_SECONDS = 5.0
STOPPED_QUIET_SECONDS = 1.0


def raise_open_files_limit(needed: int) -> None:
    """A socket per client: lift the soft limit on open files (often 1,024)
    to the hard limit when the clients need more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def drain_stopped(client: Client) -> Dict[str, Any]:
    """Read what the server left for the stopped client: until the end of the
    connection, a close frame, or a quiet spell (the server still sends)."""
    found = client.connection.read_until_closed(
        STOPPED_QUIET_SECONDS, STOPPED_DRAIN_SECONDS
    )
    now_ns, received_before = time.monotonic_ns(), client.stats.received
    for text in found.texts:
        client.stats.count(text, now_ns)
    client.stats.arrived(received_before, now_ns)
    sock = client.connection.sock
    return {
        "frames_received": client.stats.received,
        "last_sent_ns": client.stats.last_sent_ns,
        "bytes_left_in_socket": found.bytes_read,
        "close_code": found.close_code,
        "connection_ended": found.eof or found.close_code is not None,
        "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
    }


def client_result(client: Client, offset: int) -> Dict[str, Any]:
    stats = client.stats
    return {
        "received": stats.received,
        "duplicates": stats.duplicates,
        "out_of_order": stats.out_of_order,
        "foreign_frames": stats.foreign,
        "compressed": client.connection.compressed_messages,
        "first_ns": stats.first_ns,
        "last_ns": stats.last_ns,
        "close_code": client.connection.close_code,
        "latency_offset": offset,
    }


def write_latencies(path: str, clients: List[Client]) -> List[int]:
    """Write all latencies, then all send times, to ``path``; the offset of
    each client's block."""
    offsets = []
    total = 0
    with open(path, "wb") as f:
        for client in clients:
            offsets.append(total)
            client.stats.latencies.tofile(f)
            total += len(client.stats.latencies)
        for client in clients:
            client.stats.sent.tofile(f)
    return offsets


def emit(message: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
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
    raise_open_files_limit(args.clients + 64)

    def client(rcvbuf: Optional[int] = None) -> Client:
        connection = Connection.open(args.port, deflate=args.compression, rcvbuf=rcvbuf)
        return Client(connection, ReceiveStats(args.events))

    clients = [client() for _ in range(args.clients)]
    stopped = client(STOPPED_RCVBUF) if args.stopped_client else None
    emit({"ready": True, "pid": os.getpid()})
    receiver = Receiver(
        clients,
        args.events,
        args.idle_timeout,
        args.deadline,
        args.pause_ms / 1000,
        control_fd=sys.stdin.fileno(),
    )
    receiver.run()
    stopped_result = drain_stopped(stopped) if stopped is not None else None
    offsets = write_latencies(args.latency_file, clients)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit(
        {
            "ended_by": receiver.ended_by,
            "clients": [client_result(c, o) for c, o in zip(clients, offsets)],
            "stopped_client": stopped_result,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "cpu_sys_s": usage.ru_stime,
            "wakeups": receiver.wakeups,
            "recvs": receiver.recvs,
        }
    )
    for c in clients + ([stopped] if stopped else []):
        c.connection.close()


if __name__ == "__main__":
    main()
