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


# Messages of the cancellations that cut short a send blocked on a client:
# its outbox overflowed, or the send took longer than the bound.
_OVERFLOW = "osism: client outbox overflowed"
_TIMED_OUT = "osism: client send timed out"


class ClientOutbox:
    # The watchdog's next look, while drain_forever runs.
    _watchdog: asyncio.TimerHandle

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
        # Loop time at which the send in progress began.
        self._send_began = 0.0
        # Why the send in progress was cut short, once it was.
        self._cut_short: Optional[str] = None

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
            self._cut_send_short(_OVERFLOW)
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
        task = asyncio.current_task()
        assert task is not None, "drain_forever runs in a task"
        # No timer per batch or per send (entering and leaving
        # asyncio.timeout cost 4 us, more than the send itself, and busy
        # clients start a batch for every event or two): a watchdog looks
        # at the send in progress every tenth of the bound and cuts it
        # short once it has taken 0.9 of the bound, so a send that hangs
        # ends after 0.9 to 1.0 times send_timeout.
        interval = self.send_timeout / 10
        self._watchdog = loop.call_later(interval, self._watch, loop, interval)
        try:
            while True:
                if self._frames:
                    self._sending = task
                    try:
                        while self._frames:
                            self._send_began = loop.time()
                            await self._send(self._frames.popleft())
                    except asyncio.CancelledError as e:
                        # Only a cut alone becomes OutboxFull or
                        # TimeoutError; a cancel from outside (shutdown,
                        # disconnect) stays a cancel.
                        if e.args == (self._cut_short,) and task.uncancel() == 0:
                            if self._cut_short == _OVERFLOW:
                                raise self._full() from None
                            raise TimeoutError(
                                f"a send took longer than {self.send_timeout:g} s"
                            ) from None
                        raise
                    finally:
                        self._sending = None
                if self._overflowed:
                    raise self._full()
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            self._watchdog.cancel()

    def _watch(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._watchdog = loop.call_later(interval, self._watch, loop, interval)
        if (
            self._sending is not None
            and loop.time() - self._send_began >= self.send_timeout - interval
        ):
            self._cut_send_short(_TIMED_OUT)

    def _cut_send_short(self, reason: str) -> None:
        if self._sending is not None and self._cut_short is None:
            self._cut_short = reason
            self._sending.cancel(reason)

    def _full(self) -> OutboxFull:
        return OutboxFull(f"more than {self.max_pending} frames were pending")
