"""How many frames a WebSocket client may send: a token bucket per client.

A client may send ``rate`` frames a second, in bursts of up to twice that.
A frame over the budget is refused; a client that goes on sending after it
was refused, a whole burst's worth in a row, is flooding.
"""

import time
from typing import Callable


class FrameRate:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        # Frames refused in a row since the last one taken.
        self.refused_in_a_row = 0

    def take(self) -> bool:
        """Whether one more frame is within the budget (and count it)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.refused_in_a_row >= self.burst
