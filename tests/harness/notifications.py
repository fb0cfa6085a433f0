"""Notifications as tests write them, and the event frames they become."""

from typing import Any, Dict


def ironic(event: str, node: str, uuid_: str = "") -> Dict[str, Any]:
    """An Ironic notification: event_type and payload."""
    payload = {"ironic_object.data": {"name": node, "uuid": uuid_ or f"uuid-{node}"}}
    return {"event_type": f"baremetal.node.{event}", "payload": payload}


def nova(event: str, host: str, uuid_: str = "") -> Dict[str, Any]:
    payload = {"nova_object.data": {"host": host, "uuid": uuid_ or f"inst-{host}"}}
    return {"event_type": f"compute.instance.{event}", "payload": payload}


def expected_data(
    payload: Dict[str, Any], service: str, resource_id: Any
) -> Dict[str, Any]:
    """The ``data`` of the event frame a notification becomes."""
    return {**payload, "service_type": service, "resource_id": resource_id}


def summary(frame: Dict[str, Any]) -> tuple:
    """(event_type, node_name, resource_id) of an event frame."""
    return (frame["event_type"], frame["node_name"], frame["data"]["resource_id"])
