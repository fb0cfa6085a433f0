"""The frames waiting for one WebSocket client, and the bound on sending them.

Every client gets its own outbox, drained by its own task, so a client that
reads slowly (or not at all) delays only itself: the broadcaster appends and
moves on. Frames are sent in the order they were put.
"""

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Optional


class OutboxFull(Exception):
    """More frames are waiting for a client than its outbox may hold."""


# Message of the cancellation that cuts short a send blocked on a client
# whose outbox overflowed.
_OVERFLOW = "osism: client outbox overflowed"


class ClientOutbox:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        send_timeout: float,
        max_pending: int,
    ) -> None:
        self._send = send
        self.send_timeout = send_timeout
        self.max_pending = max_pending
        self._frames: Deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._overflowed = False
        # The task in drain_forever while it waits for a send, else None.
        self._sending: "Optional[asyncio.Task[Any]]" = None

    @property
    def pending(self) -> int:
        """Frames not sent yet (one being sent counts)."""
        return len(self._frames) + (self._sending is not None)

    def put(self, frame: str) -> bool:
        """Queue a frame without waiting; False if the client is too far behind.

        Once ``max_pending`` frames wait, the outbox overflows for good: the
        waiting frames are released and the draining task ends with
        OutboxFull at once, cutting short a send that is blocked on the
        client, so the one task that owns the client is also the one that
        drops it.
        """
        if self._overflowed:
            return False
        if len(self._frames) >= self.max_pending:
            self._overflowed = True
            self._frames.clear()
            self._wakeup.set()
            if self._sending is not None:
                self._sending.cancel(_OVERFLOW)
            return False
        self._frames.append(frame)
        self._wakeup.set()
        return True

    async def drain_forever(self) -> None:
        """Send queued frames in order, then wait for more; runs until cancelled.

        A send that raises ends the loop with that exception; a send that does
        not finish within ``send_timeout`` seconds ends it with TimeoutError;
        an overflow ends it with OutboxFull.
        Frames put while a batch is being sent join that batch, so a busy
        client costs one wake-up per batch rather than one per frame.
        """
        loop = asyncio.get_running_loop()
        # One timer per batch, moved forward as sends complete, instead of one
        # per frame (creating and cancelling a timer per frame cost as much as
        # the send itself). It is moved only once a tenth of the bound has
        # passed, so a send that hangs is cut off after 0.9 to 1.0 times
        # send_timeout.
        slack = self.send_timeout / 10
        while True:
            if self._frames:
                task = asyncio.current_task()
                assert task is not None, "drain_forever runs in a task"
                self._sending = task
                try:
                    async with asyncio.timeout(self.send_timeout) as bound:
                        moved_at = loop.time()
                        while self._frames:
                            now = loop.time()
                            if now - moved_at >= slack:
                                bound.reschedule(now + self.send_timeout)
                                moved_at = now
                            await self._send(self._frames.popleft())
                except asyncio.CancelledError as e:
                    # Only an overflow alone becomes OutboxFull; a cancel
                    # from outside (shutdown, disconnect) stays a cancel.
                    if e.args == (_OVERFLOW,) and task.uncancel() == 0:
                        raise self._full() from None
                    raise
                finally:
                    self._sending = None
            if self._overflowed:
                raise self._full()
            self._wakeup.clear()
            await self._wakeup.wait()

    def _full(self) -> OutboxFull:
        return OutboxFull(f"more than {self.max_pending} frames were pending")
