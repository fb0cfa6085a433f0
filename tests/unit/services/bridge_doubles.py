"""Stand-ins for what the bridge's parts get from outside: a clock and a
shutdown event whose waits take no time."""

import threading
from typing import Callable, List, Optional


class FakeClock:
    """A clock that moves only when told (or when a FakeShutdown waits)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeShutdown(threading.Event):
    """A shutdown event whose waits return at once, recorded in :attr:`waits`,
    moving ``clock`` on by the time waited. It is set by the wait number
    ``stop_after`` (counting from 1), as if shutdown came then."""

    def __init__(
        self, clock: Optional[FakeClock] = None, stop_after: Optional[int] = None
    ) -> None:
        super().__init__()
        self.clock = clock
        self.stop_after = stop_after
        self.waits: List[Optional[float]] = []

    def wait(self, timeout: Optional[float] = None) -> bool:
        self.waits.append(timeout)
        if self.clock is not None and timeout is not None:
            self.clock.advance(timeout)
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            self.set()
        return self.is_set()


class FakeThread:
    """A bridge thread that was made but not started; :meth:`run` runs its
    body in the test's own thread, and it counts as alive until then."""

    def __init__(self, target: Callable[[], None], part: str) -> None:
        self.target = target
        self.name = f"osism-event-bridge-{part}"
        self.part = part
        self.alive = True
        self.ident: Optional[int] = None
        self.joined: List[Optional[float]] = []

    def run(self) -> None:
        self.ident = threading.get_ident()
        try:
            self.target()
        finally:
            self.alive = False
            self.ident = None

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: Optional[float] = None) -> None:
        self.joined.append(timeout)
