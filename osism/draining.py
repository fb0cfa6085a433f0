"""On SIGTERM, an API process delivers what it has accepted before it goes.

A server stopping on SIGTERM (uvicorn, gunicorn's workers) closes every
WebSocket at once. Here the API first stops taking events (the bridge shuts
down: nothing more comes from Redis), lets the broadcaster and the clients'
senders deliver what is queued, at most SHUTDOWN_DRAIN_TIMEOUT seconds, and
closes each client with 1001 (Going Away); then the server's own handler
runs as it would have. A client that reconnects elsewhere resumes after
its last event, so what arrives during the stop is not lost either.

The handler is installed from the app's start-up, after the server's, and
only in the main thread (where signals are delivered).
"""

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any, Callable, Optional

logger = logging.getLogger("osism.api")


# Seconds between looks at the bridge's local queue while stopping.
POLL_INTERVAL = 0.01


async def deliver_then_close(bridge: Any, manager: Any, timeout: float) -> None:
    """What was accepted reaches the clients, within ``timeout`` seconds in
    all: the events posted to this process and still in the bridge's local
    queue are handed over, the bridge stops (nothing more comes in), the
    manager delivers what is queued and closes every client with 1001."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while bridge.health()["local_queue"] and loop.time() < deadline:
        await asyncio.sleep(POLL_INTERVAL)
    await asyncio.to_thread(bridge.shutdown)
    await manager.drain(max(0.0, deadline - loop.time()))


class SigtermDrain:
    """``drain()`` is awaited on ``loop`` at the first SIGTERM; the handler
    that was there before runs afterwards."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, drain: Callable[[], Any]
    ) -> None:
        self.loop = loop
        self.drain = drain
        self.previous: Any = None
        self.installed = False
        self.task: "Optional[asyncio.Future[Any]]" = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self.previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        self.installed = True

    def uninstall(self) -> None:
        if self.installed and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self.previous)
        self.installed = False

    def _on_sigterm(self, signum: int, frame: Optional[FrameType]) -> None:
        # A second SIGTERM goes straight to the server's handler.
        signal.signal(signal.SIGTERM, self.previous)
        self.installed = False
        logger.info("Received SIGTERM: delivering what was accepted, then closing")
        self.loop.call_soon_threadsafe(self._start, signum, frame)

    def _start(self, signum: int, frame: Optional[FrameType]) -> None:
        self.task = asyncio.ensure_future(self._drain_then_exit(signum, frame))

    async def _drain_then_exit(self, signum: int, frame: Optional[FrameType]) -> None:
        try:
            await self.drain()
        except Exception as e:
            logger.error("Delivering before the stop failed: %r", e)
        finally:
            self._pass_on(signum, frame)

    def _pass_on(self, signum: int, frame: Optional[FrameType]) -> None:
        if callable(self.previous):
            self.previous(signum, frame)
        elif self.previous == signal.SIG_DFL:  # pragma: no cover - no server
            signal.raise_signal(signum)
