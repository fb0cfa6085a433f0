"""How long to wait before trying again, for every loop that reconnects.

The event bridge's subscriber and reconnector and the listener all wait
longer after each failed attempt, up to a cap, and start over once an
attempt succeeded. :class:`Backoff` is that policy; each loop takes a fresh
:meth:`Backoff.delays` iterator for every run of failures, so the policy
itself holds no state and one object can serve several threads.
"""

from typing import Iterator


class Backoff:
    """Delays from ``first`` seconds, multiplied by ``factor`` after each
    attempt, never above ``cap``."""

    def __init__(self, first: float, cap: float, factor: float = 2.0) -> None:
        if first <= 0:
            raise ValueError(f"the first delay must be positive, got {first}")
        if cap < first:
            raise ValueError(f"the cap ({cap}) is below the first delay ({first})")
        if factor < 1:
            raise ValueError(f"the factor must be at least 1, got {factor}")
        self.first = first
        self.cap = cap
        self.factor = factor

    def delays(self) -> Iterator[float]:
        """The delays of one run of failed attempts, without end."""
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.factor, self.cap)

    def __repr__(self) -> str:
        return (
            f"Backoff(first={self.first:g}, cap={self.cap:g}, factor={self.factor:g})"
        )
