"""A listener-side publisher in a process of its own, driven over its stdin.

``python tests/harness/publisher_process.py`` makes an
:class:`~osism.services.event_bridge.EventBridge` from the REDIS_* settings
in its environment and reads one JSON command per line:

- ``{"event_type": ..., "payload": ...}``: hand the event to ``add_event``;
- ``{"health": true}``: report the bridge's health;
- ``{"burst": {"events": N, "rate": R}}``: publish N numbered events (see
  tests/harness/numbered_events.py), R per second or as fast as it can, and
  report when they went out and what that cost this process.

It answers each command with one JSON line on stdout and shuts the bridge
down at the end of its input. Its log goes to stderr, at LOG_LEVEL (info
unless set: add_event logs every publish at info, which a burst that
measures leaves out).

It is run as a script, not with -m, so that `import osism` finds the package
PYTHONPATH names first (the benchmark's snapshot of osism/, then the work
tree for `tests`), not the one in the working directory.
"""

import json
import logging
import os
import resource
import sys
from typing import Any, Dict, Optional

from osism.services.event_bridge import EventBridge
from tests.harness.numbered_events import publish_numbered


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def burst(bridge: EventBridge, events: int, rate: Optional[float]) -> Dict[str, Any]:
    cpu_before = cpu_seconds()
    result = publish_numbered(bridge.add_event, events, rate)
    result["cpu_s"] = cpu_seconds() - cpu_before
    result["counters"] = dict(bridge.stats)
    return result


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "info").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    bridge = EventBridge()
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("health"):
                answer = bridge.health()
            elif "burst" in command:
                answer = burst(bridge, **command["burst"])
            else:
                bridge.add_event(command["event_type"], command["payload"])
                answer = {"ok": True}
            print(json.dumps(answer), flush=True)
    finally:
        bridge.shutdown()


if __name__ == "__main__":
    main()
