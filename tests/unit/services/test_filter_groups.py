"""Unit tests of osism.services.filter_groups: the manager's connections,
grouped by their filters."""

from typing import Any, List, Tuple
from unittest.mock import MagicMock

import pytest

from osism.services.filter_groups import ConnectionRegistry
from osism.services.websocket_connection import WebSocketConnection


def new_connection(**filters: Any) -> WebSocketConnection:
    connection = WebSocketConnection(MagicMock())
    for name, values in filters.items():
        setattr(connection, name, values)
    return connection


def registered(registry: ConnectionRegistry, **filters: Any) -> WebSocketConnection:
    connection = new_connection(**filters)
    registry[connection.websocket] = connection
    return connection


def shape(registry: ConnectionRegistry) -> List[Tuple[Any, List[Any]]]:
    """The groups as (matcher, members), compared by identity."""
    return [
        (id(matcher), [id(member) for member in members])
        for matcher, members in registry.groups()
    ]


def groups_of(*groups: List[WebSocketConnection]) -> List[Tuple[Any, List[Any]]]:
    """The expected shape: each group's first member is its matcher."""
    return [(id(group[0]), [id(member) for member in group]) for group in groups]


@pytest.fixture
def registry() -> ConnectionRegistry:
    return ConnectionRegistry()


class TestGroups:
    def test_an_empty_registry_has_no_groups(self, registry):
        assert registry.groups() == []

    def test_clients_without_filters_form_one_group(self, registry):
        clients = [registered(registry) for _ in range(5)]

        assert shape(registry) == groups_of(clients)

    @pytest.mark.parametrize("change", ["connect", "leave", "filters"])
    def test_a_change_makes_new_member_lists_and_leaves_the_old_as_they_were(
        self, registry, change
    ):
        """What the fan-out's staging relies on (see fan_out_pass)."""
        first, second = registered(registry), registered(registry)
        [(_, before)] = registry.groups()

        if change == "connect":
            registered(registry)
        elif change == "leave":
            del registry[second.websocket]
        else:
            second.event_filters = ["compute.instance.create.end"]

        assert before == [first, second]
        assert all(members is not before for _, members in registry.groups())

    def test_groups_come_in_the_order_their_first_member_connected(self, registry):
        a1 = registered(registry, event_filters=["a"])
        b1 = registered(registry, node_filters=["b"])
        a2 = registered(registry, event_filters=["a"])
        everything = registered(registry)
        b2 = registered(registry, node_filters=["b"])

        assert shape(registry) == groups_of([a1, a2], [b1, b2], [everything])

    def test_order_and_duplicates_of_filter_values_do_not_matter(self, registry):
        first = registered(registry, service_filters=["nova", "compute"])
        second = registered(registry, service_filters=["compute", "nova", "nova"])

        assert shape(registry) == groups_of([first, second])

    def test_the_same_values_in_another_filter_list_are_another_group(self, registry):
        by_event = registered(registry, event_filters=["x"])
        by_node = registered(registry, node_filters=["x"])
        by_service = registered(registry, service_filters=["x"])

        assert shape(registry) == groups_of([by_event], [by_node], [by_service])

    def test_every_filter_list_counts(self, registry):
        both = registered(registry, event_filters=["e"], node_filters=["n"])
        event_only = registered(registry, event_filters=["e"])

        assert shape(registry) == groups_of([both], [event_only])

    def test_groups_are_made_once_until_something_changes(self, registry):
        registered(registry)
        registered(registry, node_filters=["n1"])

        assert registry.groups() is registry.groups()


class TestRegroupingOnFilters:
    def test_a_filter_list_assigned_moves_the_client_to_its_group(self, registry):
        first, second = registered(registry), registered(registry)
        watcher = registered(registry, event_filters=["compute.instance.update"])
        before = registry.groups()

        second.event_filters = ["compute.instance.update"]

        assert registry.groups() is not before
        assert shape(registry) == groups_of([first], [second, watcher])

    @pytest.mark.parametrize(
        "name", ["event_filters", "node_filters", "service_filters"]
    )
    def test_each_filter_list_assigned_regroups(self, registry, name):
        first, second = registered(registry), registered(registry)
        registry.groups()

        setattr(second, name, ["value"])

        assert shape(registry) == groups_of([first], [second])

    def test_set_filters_regroups(self, registry):
        first = registered(registry, node_filters=["n1"])
        second = registered(registry)
        registry.groups()

        second.set_filters(node_filters=["n1"])

        assert shape(registry) == groups_of([first, second])

    def test_the_matcher_changing_its_filters_leaves_the_others_together(
        self, registry
    ):
        first, second, third = (registered(registry) for _ in range(3))
        registry.groups()

        first.service_filters = ["baremetal"]

        assert shape(registry) == groups_of([first], [second, third])

    def test_clearing_the_filters_joins_the_group_without_filters(self, registry):
        plain = registered(registry)
        filtered = registered(registry, event_filters=["a"], node_filters=["n"])
        registry.groups()

        filtered.set_filters(event_filters=[], node_filters=[])

        assert shape(registry) == groups_of([plain, filtered])


class TestRegroupingOnMembership:
    def test_a_client_added_joins_its_group(self, registry):
        first = registered(registry)
        registry.groups()

        second = registered(registry)

        assert shape(registry) == groups_of([first, second])

    def test_replacing_a_websockets_connection_regroups(self, registry):
        old = registered(registry)
        new = new_connection(node_filters=["n"])
        registry.groups()

        registry[old.websocket] = new

        assert shape(registry) == groups_of([new])

    def test_del_removes_the_client_from_its_group(self, registry):
        first, second = registered(registry), registered(registry)
        registry.groups()

        del registry[first.websocket]

        assert shape(registry) == groups_of([second])

    def test_pop_removes_the_client_and_returns_it(self, registry):
        first, second = registered(registry), registered(registry)
        registry.groups()

        assert registry.pop(first.websocket) is first
        assert shape(registry) == groups_of([second])

    def test_pop_of_an_unknown_websocket_returns_the_default(self, registry):
        client = registered(registry)
        registry.groups()

        assert registry.pop(MagicMock(), None) is None
        assert shape(registry) == groups_of([client])

    def test_pop_of_an_unknown_websocket_without_default_raises(self, registry):
        with pytest.raises(KeyError):
            registry.pop(MagicMock())

    def test_popitem_removes_the_newest_client(self, registry):
        first, second = registered(registry), registered(registry)
        registry.groups()

        assert registry.popitem() == (second.websocket, second)
        assert shape(registry) == groups_of([first])

    def test_clear_removes_every_group(self, registry):
        registered(registry)
        registered(registry, event_filters=["x"])
        registry.groups()

        registry.clear()

        assert registry == {}
        assert registry.groups() == []

    def test_setdefault_adds_a_new_client_that_regroups_on_filters(self, registry):
        first = registered(registry)
        registry.groups()
        second = new_connection()

        assert registry.setdefault(second.websocket, second) is second
        assert shape(registry) == groups_of([first, second])
        second.node_filters = ["n"]
        assert shape(registry) == groups_of([first], [second])

    def test_setdefault_keeps_a_known_client(self, registry):
        first = registered(registry)
        other = new_connection(node_filters=["n"])

        assert registry.setdefault(first.websocket, other) is first
        assert registry[first.websocket] is first
        assert shape(registry) == groups_of([first])

    def test_update_adds_clients_that_regroup_on_filters(self, registry):
        first = registered(registry)
        registry.groups()
        second, third = new_connection(), new_connection(event_filters=["e"])

        registry.update({second.websocket: second}, **{"third": third})

        assert registry["third"] is third
        assert shape(registry) == groups_of([first, second], [third])
        second.event_filters = ["e"]
        assert shape(registry) == groups_of([first], [second, third])

    def test_update_from_pairs(self, registry):
        client = new_connection()

        registry.update([(client.websocket, client)])

        assert shape(registry) == groups_of([client])

    def test_the_registry_is_a_dict_of_websocket_to_connection(self, registry):
        client = registered(registry)

        assert isinstance(registry, dict)
        assert registry == {client.websocket: client}
        assert registry.get(client.websocket) is client
        assert list(registry.values()) == [client]

    def test_merging_with_or_assign_adds_clients_to_the_groups(self, registry):
        first = registered(registry)
        registry.groups()
        second = new_connection()

        registry |= {second.websocket: second}

        assert shape(registry) == groups_of([first, second])
        second.node_filters = ["n"]
        assert shape(registry) == groups_of([first], [second])


def test_the_filter_lists_are_described_on_the_class():
    from osism.services.websocket_connection import FilterList, WebSocketConnection

    assert isinstance(WebSocketConnection.node_filters, FilterList)
    assert WebSocketConnection.service_filters.which == 2
