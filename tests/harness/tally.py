"""Numbered events as one client got them: missing, duplicated, out of order.

A numbered event's resource id is ``n<number>`` (``n00042``; see
:mod:`tests.harness.notification_flow`). A :class:`Tally` keeps, per client,
every number in the order it arrived, when it first arrived and under which
event id, so a test can say what was sent, what was delivered, what came
twice or out of order, and how long the recovery from a fault took.
"""

import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

_NUMBER = re.compile(r"n(\d+)")


def number_of(frame: Any) -> Optional[int]:
    """The number of a numbered event frame; None for anything else (a
    heartbeat, a reply, another event)."""
    if not isinstance(frame, dict) or "event_type" not in frame:
        return None
    data = frame.get("data")
    resource_id = data.get("resource_id") if isinstance(data, dict) else None
    if not isinstance(resource_id, str):
        return None
    match = _NUMBER.fullmatch(resource_id)
    return int(match[1]) if match else None


@dataclass
class Tally:
    """What one client (``name``) received of the numbered events."""

    name: str
    # Every numbered event in the order it came, duplicates included.
    arrivals: List[int] = field(default_factory=list)
    # When each number first came (time.monotonic()), and its event id.
    first_at: Dict[int, float] = field(default_factory=dict)
    ids: Dict[int, str] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    _highest: int = -1

    def add(self, frame: Dict[str, Any]) -> Optional[int]:
        """Count ``frame`` if it is a numbered event; its number."""
        number = number_of(frame)
        if number is None:
            return None
        self.arrivals.append(number)
        if number in self.first_at:
            self.duplicates += 1
            return number
        self.first_at[number] = time.monotonic()
        self.ids[number] = frame.get("id", "")
        if number < self._highest:
            self.out_of_order += 1
        self._highest = max(self._highest, number)
        return number

    @property
    def received(self) -> int:
        """Distinct numbered events received."""
        return len(self.first_at)

    @property
    def last_id(self) -> Optional[str]:
        """The event id of the last numbered event that came."""
        return self.ids[self.arrivals[-1]] if self.arrivals else None

    def has(self, numbers: Iterable[int]) -> bool:
        return all(n in self.first_at for n in numbers)

    def missing(self, sent: Iterable[int]) -> List[int]:
        return [n for n in sent if n not in self.first_at]

    def unexpected(self, sent: Iterable[int]) -> List[int]:
        """Numbers received that were not sent."""
        expected = set(sent)
        return sorted(n for n in self.first_at if n not in expected)

    def complete_at(self, numbers: Iterable[int]) -> float:
        """When the last of ``numbers`` first arrived (all must have)."""
        return max((self.first_at[n] for n in numbers), default=0.0)

    def figures(self, sent: Iterable[int]) -> str:
        sent = list(sent)
        return (
            f"{self.name}: delivered {self.received} of {len(sent)}, missing "
            f"{len(self.missing(sent))}, duplicated {self.duplicates}, out of "
            f"order {self.out_of_order}"
        )

    def check(self, sent: Iterable[int]) -> None:
        """Every number of ``sent`` arrived, none twice, none out of order,
        nothing else; else an AssertionError that says which."""
        sent = list(sent)
        missing = self.missing(sent)
        unexpected = self.unexpected(sent)
        assert not missing and not unexpected and not self.duplicates, (
            f"{self.figures(sent)}; missing {_excerpt(missing)}, not sent "
            f"{_excerpt(unexpected)}, arrivals {_excerpt(self._repeats())}"
        )
        assert not self.out_of_order, (
            f"{self.figures(sent)}; arrivals around the first one out of order: "
            f"{self._around_disorder()}"
        )

    def _repeats(self) -> List[int]:
        seen: Dict[int, int] = {}
        for n in self.arrivals:
            seen[n] = seen.get(n, 0) + 1
        return [n for n, count in seen.items() if count > 1]

    def _around_disorder(self) -> List[int]:
        highest = -1
        for i, n in enumerate(self.arrivals):
            if n < highest:
                return self.arrivals[max(0, i - 5) : i + 5]
            highest = max(highest, n)
        return []


def _excerpt(numbers: List[int], most: int = 20) -> str:
    shown = ", ".join(map(str, numbers[:most]))
    more = f" and {len(numbers) - most} more" if len(numbers) > most else ""
    return f"[{shown}{more}]"


def figures_line(
    scenario: str,
    sent: Iterable[int],
    tallies: Iterable[Tally],
    recovery_s: Optional[float],
    note: str = "",
) -> str:
    """One line for the run's "measurements": per client what was sent,
    delivered, duplicated and out of order, and how long the recovery took."""
    sent = list(sent)
    per_client = "; ".join(t.figures(sent) for t in tallies)
    recovery = "" if recovery_s is None else f"; recovery {recovery_s:.2f} s"
    extra = f"; {note}" if note else ""
    return f"nothing lost, {scenario}: sent {len(sent)}; {per_client}{recovery}{extra}"
