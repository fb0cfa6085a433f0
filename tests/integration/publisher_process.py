"""A listener-side publisher in a process of its own, driven over its stdin.

``python -m tests.integration.publisher_process`` makes an
:class:`~osism.services.event_bridge.EventBridge` from the REDIS_* settings
in its environment and reads one JSON command per line:

- ``{"event_type": ..., "payload": ...}``: hand the event to ``add_event``;
- ``{"health": true}``: report the bridge's health.

It answers each command with one JSON line on stdout (``{"ok": true}`` or
the health) and shuts the bridge down at the end of its input. Its log goes
to stderr.
"""

import json
import logging
import sys

from osism.services.event_bridge import EventBridge


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    bridge = EventBridge()
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("health"):
                answer = bridge.health()
            else:
                bridge.add_event(command["event_type"], command["payload"])
                answer = {"ok": True}
            print(json.dumps(answer), flush=True)
    finally:
        bridge.shutdown()


if __name__ == "__main__":
    main()
