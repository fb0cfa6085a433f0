"""One WebSocket client of the manager: the seed's ``WebSocketConnection``,
its filters and how an event is matched against them."""

import asyncio
from collections.abc import Iterable
from typing import Any, Callable, FrozenSet, List, Optional, Tuple

from starlette.websockets import WebSocket

from osism.services.client_outbox import ClientOutbox
from osism.services.event_message import EventMessage
from osism.services.frame_writer import FrameWriter, frame_writer_of
from osism.services.openstack_services import service_names, service_of

# A client's filters as values, the same for clients that match alike.
FilterKey = Tuple[FrozenSet[str], FrozenSet[str], FrozenSet[str]]
# The key of a client without filters, one for all (empty frozensets are
# not shared: 700 bytes a client).
NO_FILTERS: FilterKey = (frozenset(), frozenset(), frozenset())


def _filter_list(values: Iterable[str]) -> List[str]:
    # A bare string would otherwise be searched with `in` and match by
    # substring ("node1" in "node10"); it means a list of one value.
    if isinstance(values, str):
        return [values]
    return list(values)


def _client_label(websocket: Any) -> str:
    client = getattr(websocket, "client", None)
    host = getattr(client, "host", None)
    port = getattr(client, "port", None)
    return f"{host}:{port}" if host is not None else "unknown client"


class FilterList:
    """One of a connection's filter lists. It is replaced, never changed in
    place: assigning one (a bare string is a list of one value) is what
    regroups the clients (see filter_groups)."""

    def __init__(self, which: int) -> None:
        self.which = which

    def __get__(self, connection: Any, owner: Any = None) -> Any:
        if connection is None:
            return self
        return connection._filters[self.which]

    def __set__(self, connection: Any, values: Iterable[str]) -> None:
        connection._replace_filters(self.which, values)


class WebSocketConnection:
    """One connected client: its socket, its filters and its outbox."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        # Called whenever a filter list is replaced (see filter_groups).
        self.on_filters_changed: Optional[Callable[[], None]] = None
        self._filters: Tuple[List[str], List[str], List[str]] = ([], [], [])
        self.filter_key: FilterKey = NO_FILTERS
        self.label = _client_label(websocket)
        # Writes frames without a task when the server offers it.
        self.writer: Optional[FrameWriter] = frame_writer_of(websocket)
        self.outbox: Optional[ClientOutbox] = None
        self.sender: Optional["asyncio.Task[None]"] = None
        # History sequence numbers up to which events are not sent live to
        # this client: those before it connected, less what a resume has
        # replayed since (see WebSocketManager.resume).
        self.replay_through = 0

    def set_filters(
        self,
        event_filters: Optional[Iterable[str]] = None,
        node_filters: Optional[Iterable[str]] = None,
        service_filters: Optional[Iterable[str]] = None,
    ) -> None:
        """Replace the filter lists that are given; None keeps a list as it is."""
        if event_filters is not None:
            self.event_filters = event_filters
        if node_filters is not None:
            self.node_filters = node_filters
        if service_filters is not None:
            self.service_filters = service_filters

    event_filters = FilterList(0)
    node_filters = FilterList(1)
    service_filters = FilterList(2)

    def _replace_filters(self, which: int, values: Iterable[str]) -> None:
        filters = list(self._filters)
        filters[which] = _filter_list(values)
        self._filters = (filters[0], filters[1], filters[2])
        # Clients whose filters hold the same values, in any order, match
        # the same events.
        event, node, service = self._filters
        self.filter_key = (frozenset(event), frozenset(node), frozenset(service))
        if self.on_filters_changed is not None:
            self.on_filters_changed()

    def matches_filters(self, event: EventMessage) -> bool:
        """True when every non-empty filter list holds the event's value."""
        if not (self.event_filters or self.node_filters or self.service_filters):
            return True
        if self.event_filters and event.event_type not in self.event_filters:
            return False
        if self.node_filters and (
            event.node_name is None or event.node_name not in self.node_filters
        ):
            return False
        if self.service_filters and not self._service_matches(event):
            return False
        return True

    def _service_matches(self, event: EventMessage) -> bool:
        """Whether a service filter names the event's service, by its type
        (compute) or its OpenStack project (nova).

        The service is the one derived from the notification
        (``data["service_type"]``); an event without it (built by hand, as
        in the seed) falls back to the first segment of its type.
        """
        service = event.data.get("service_type")
        if not isinstance(service, str):
            service = service_of(event.event_type)
        return any(name in self.service_filters for name in service_names(service))
