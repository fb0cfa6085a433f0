"""The connected clients, grouped by their filters.

Matching an event against every client's filters costs a Python call per
client; a thousand dashboards that all watch everything, or the same few
services, would cost a thousand calls per event. Clients with the same
filters (no filters at all being the most common) form one group, and an
event is matched once per group: the cost grows with the number of distinct
filters, not of clients.
"""

from typing import Any, Dict, List, Optional, Tuple

from osism.services.websocket_connection import WebSocketConnection

# A group: the connection whose filters stand for the group's, and its members.
Group = Tuple[WebSocketConnection, List[WebSocketConnection]]


class ConnectionRegistry(Dict[Any, WebSocketConnection]):
    """The manager's ``connections`` (websocket -> connection), a dict as the
    seed has it, that also knows its connections' groups.

    The groups are made again on first use after any change: a connection
    added or removed, or one of them given other filters.
    """

    def __init__(self) -> None:
        super().__init__()
        self._groups: Optional[List[Group]] = None

    def groups(self) -> List[Group]:
        """Every connection in exactly one group, each group in the order
        its first member connected."""
        if self._groups is None:
            by_key: Dict[Any, Group] = {}
            for connection in self.values():
                group = by_key.get(connection.filter_key)
                if group is None:
                    by_key[connection.filter_key] = (connection, [connection])
                else:
                    group[1].append(connection)
            self._groups = list(by_key.values())
        return self._groups

    def regroup(self) -> None:
        self._groups = None

    def __setitem__(self, websocket: Any, connection: WebSocketConnection) -> None:
        super().__setitem__(websocket, connection)
        connection.on_filters_changed = self.regroup
        self.regroup()

    def __delitem__(self, websocket: Any) -> None:
        super().__delitem__(websocket)
        self.regroup()

    def pop(self, websocket: Any, *default: Any) -> Any:
        self.regroup()
        return super().pop(websocket, *default)

    def popitem(self) -> Tuple[Any, WebSocketConnection]:
        self.regroup()
        return super().popitem()

    def clear(self) -> None:
        super().clear()
        self.regroup()

    def setdefault(self, websocket: Any, connection: Any = None) -> Any:
        if websocket not in self:
            self[websocket] = connection
        return self[websocket]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for websocket, connection in dict(*args, **kwargs).items():
            self[websocket] = connection

    def __ior__(  # type: ignore[override,misc]
        self, other: Any
    ) -> "ConnectionRegistry":
        self.update(other)
        return self
