"""The event frame contract, stated once for the tests."""

# Keys of every event frame a WebSocket client receives (DESIGN.md, contract 3).
EVENT_KEYS = {"id", "timestamp", "event_type", "source", "node_name", "data"}
