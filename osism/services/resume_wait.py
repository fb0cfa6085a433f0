"""A resume waits, within a bound, for the Redis history to be loaded.

An API process serves as soon as it starts, while its bridge subscribes and
loads the recent events of the Redis history stream into the manager's
history (``bridge/catch_up.py``); one whose subscription broke catches up on
what was published meanwhile once it subscribes again. A client that resumes
in between names an event that Redis has and this process does not have
yet: answered at once, that is a gap although nothing was lost.

So the history is marked not :attr:`~EventHistory.current` while it is to
be loaded or caught up on (from the start of an API process that loads it,
from a break of its subscription) and current again once that is done, or
when Redis cannot be reached (nothing to wait for); the bridge marks it on
the manager's loop, after what it handed over before. A resume whose event
is not in the history waits until it is, or until the history is current
and nothing handed over is left to fan out, at most RESUME_HISTORY_WAIT
seconds; then it is answered with what is here (a gap for an unknown id).
An embedded API's history is always current: nothing waits there.
"""

import asyncio
import logging
from typing import Any

logger = logging.getLogger("osism.websocket")

# Seconds between looks at the history while a resume waits for it.
POLL_INTERVAL = 0.01


def _answerable(manager: Any, event_id: str) -> bool:
    history = manager.history
    return event_id in history or (history.current and manager.event_queue.empty())


async def history_ready(manager: Any, event_id: str, timeout: float) -> bool:
    """Wait until a resume after ``event_id`` can be answered from
    ``manager``'s history (see above); False if ``timeout`` seconds passed
    first, and the resume is answered with what is there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not _answerable(manager, event_id):
        if loop.time() >= deadline:
            logger.warning(
                "Answering a resume after %r without the Redis history: it was "
                "not loaded within %g s (RESUME_HISTORY_WAIT)",
                event_id,
                timeout,
            )
            return False
        await asyncio.sleep(POLL_INTERVAL)
    return True
