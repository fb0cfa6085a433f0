"""Reading the Redis channel on the API's event loop instead of in a thread.

The subscriber thread reading the channel costs two wake-ups per event at a
steady rate: the thread wakes for the message and hands it to the loop, which
wakes again (and the two take turns at the GIL). Where the WebSocket manager
runs an asyncio loop, the subscriber hands the reading of its pub/sub socket
to that loop instead (``loop.add_reader``): a message wakes the loop once,
and is fanned out in the same turn. The thread stays what supervises the
connection: it subscribes, catches up, pings a quiet Redis, waits here for a
read that failed, and reconnects, as it does when it reads itself.

Every read of the pub/sub happens on the loop while it is attached; the
thread touches the pub/sub again only after :meth:`LoopReader.detach`, which
waits until the loop let go of the socket.
"""

import asyncio
import logging
import threading
from typing import Any, Callable, Dict, Optional

from osism.services.loop_handoff import running_here

logger = logging.getLogger("osism.event_bridge")

# Seconds the supervising thread waits for the loop to take up or let go of
# the socket; a loop that does not answer in time is stopping or stuck.
LOOP_ANSWER_TIMEOUT = 2.0
# Seconds the loop waits for the rest of a message whose start has arrived
# (a large event comes in several segments). Only a Redis that stops in the
# middle of a message makes the loop wait that long; the read then fails.
REST_OF_MESSAGE_TIMEOUT = 1.0


def socket_of(pubsub: Any) -> Optional[int]:
    """The file descriptor of ``pubsub``'s connection, if it has one.

    redis-py offers no public accessor: ``connection._sock`` is the socket
    of a connected ``redis.Connection`` (redis is pinned in the Pipfile;
    tests/integration/test_event_bridge_redis.py reads a real one)."""
    sock = getattr(getattr(pubsub, "connection", None), "_sock", None)
    return None if sock is None else sock.fileno()


class LoopReader:
    """Reads a pub/sub on ``loop``, handing every message to ``take`` there."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        take: Callable[[Dict[str, Any]], None],
        batch_interval: float = 0.0,
    ) -> None:
        self.loop = loop
        self.take = take
        # EVENT_BATCH_INTERVAL: reads are at least this far apart.
        self.batch_interval = batch_interval
        self._read_at = -batch_interval
        self._later: Optional[asyncio.TimerHandle] = None
        self._pubsub: Any = None
        self._fd: Optional[int] = None
        self._failed = threading.Event()
        self._failure: Optional[BaseException] = None

    @property
    def pubsub(self) -> Any:
        """The pub/sub the loop reads, None while detached."""
        return self._pubsub

    def attach(self, pubsub: Any) -> bool:
        """Have the loop read ``pubsub`` from now on (what is buffered
        already included); False when the loop does not take it."""
        fd = socket_of(pubsub)
        if fd is None:
            return False
        self._failed.clear()
        self._failure = None
        self._pubsub, self._fd = pubsub, fd
        if self._on_loop(self._start):
            return True
        self._pubsub = self._fd = None
        return False

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds; raises what a read on the loop raised."""
        if self._failed.wait(timeout):
            failure, pubsub = self._failure, self._pubsub
            self.detach()
            # As the pub/sub's own reads do after a failure: the next
            # subscribe connects afresh instead of writing to a dead socket.
            connection = getattr(pubsub, "connection", None)
            if connection is not None:
                connection.disconnect()
            assert failure is not None
            raise failure

    def ping(self) -> None:
        """Ping Redis from the loop (the answer is read there)."""
        fd = self._fd
        if self._pubsub is not None and fd is not None:
            self._on_loop(lambda: self._ping(fd), wait=False)

    def detach(self) -> None:
        """Stop reading; once this returns the loop no longer touches the pub/sub."""
        fd = self._fd
        if self._pubsub is not None and fd is not None:
            self._on_loop(lambda: self._stop(fd))
            self._pubsub = self._fd = None

    def _on_loop(self, work: Callable[[], None], wait: bool = True) -> bool:
        """Run ``work`` on the loop (at once when called there); with
        ``wait``, True once it ran, False when the loop is closed or did not
        get to it within LOOP_ANSWER_TIMEOUT."""
        if running_here(self.loop):
            work()
            return True
        done = threading.Event()

        def run() -> None:
            try:
                work()
            finally:
                done.set()

        try:
            self.loop.call_soon_threadsafe(run)
        except RuntimeError:
            return False
        return not wait or done.wait(LOOP_ANSWER_TIMEOUT)

    def _start(self) -> None:
        fd = self._fd
        assert fd is not None
        self.loop.add_reader(fd, self._readable, fd)
        # What the subscriber read into its buffer already would not wake
        # the loop.
        self._read(fd)

    def _readable(self, fd: int) -> None:
        """Read now, or once ``batch_interval`` has passed since the last
        read: under a steady stream, what arrives meanwhile is fanned out
        (and written to each client) together."""
        due = self._read_at + self.batch_interval
        if self.loop.time() >= due:
            self._read(fd)
            return
        self.loop.remove_reader(fd)
        self._later = self.loop.call_at(due, self._read_later, fd)

    def _read_later(self, fd: int) -> None:
        self._later = None
        self.loop.add_reader(fd, self._readable, fd)
        self._read(fd)

    def _stop(self, fd: int) -> None:
        self.loop.remove_reader(fd)
        if self._later is not None:
            self._later.cancel()
            self._later = None

    # Reads and pings go to the connection itself: the pub/sub's own methods
    # reconnect after a failure, which would block the loop while a Redis
    # that is gone does not answer; reconnecting is the thread's job.

    def _ping(self, fd: int) -> None:
        try:
            self._connection().send_command("PING")
        except Exception as e:
            self._fail(e, fd)

    def _read(self, fd: int) -> None:
        """Take every message that can be read without waiting."""
        pubsub = self._pubsub
        try:
            while True:
                connection = self._connection()
                if not connection.can_read(timeout=0):
                    return
                # A read that finds something starts the batch interval.
                self._read_at = self.loop.time()
                response = connection.read_response(
                    disconnect_on_error=False,
                    push_request=True,
                    timeout=REST_OF_MESSAGE_TIMEOUT,
                )
                message = pubsub.handle_message(response)
                if message is not None:
                    self.take(message)
        except Exception as e:
            self._fail(e, fd)

    def _connection(self) -> Any:
        connection = getattr(self._pubsub, "connection", None)
        if connection is None:
            raise ConnectionError("the Redis subscription has no connection")
        return connection

    def _fail(self, error: BaseException, fd: int) -> None:
        """Stop reading ``fd`` and tell the supervising thread why."""
        self._stop(fd)
        self._failure = error
        self._failed.set()
