"""What an OpenStack notification says about the service, node and resource
it concerns.

Versioned notifications carry the affected object under
``"<project>_object.data"``; which fields name the node and the resource
differs per project, so it is a table here rather than a chain of branches.
"""

from typing import Any, FrozenSet, Mapping, NamedTuple, Optional, Tuple


class ObjectFields(NamedTuple):
    payload_key: str
    resource_id_keys: Tuple[str, ...]
    node_name_keys: Tuple[str, ...]


class NotificationSubject(NamedTuple):
    service_type: str
    node_name: Optional[str]
    resource_id: Optional[str]


_IRONIC = ObjectFields("ironic_object.data", ("uuid",), ("name",))
_NOVA = ObjectFields("nova_object.data", ("uuid",), ("host", "name"))
_NEUTRON = ObjectFields("neutron_object.data", ("id", "uuid"), ("name", "device_id"))
_CINDER = ObjectFields("cinder_object.data", ("id", "uuid"), ("name", "display_name"))
_GLANCE = ObjectFields("glance_object.data", ("id", "uuid"), ("name",))
_KEYSTONE = ObjectFields("keystone_object.data", ("id", "uuid"), ("name",))

OBJECT_FIELDS_BY_SERVICE = {
    "baremetal": _IRONIC,
    "compute": _NOVA,
    "nova": _NOVA,
    "network": _NEUTRON,
    "neutron": _NEUTRON,
    "volume": _CINDER,
    "image": _GLANCE,
    "identity": _KEYSTONE,
}


def service_of(event_type: str) -> str:
    """The first dot-separated segment of an event type; "unknown" for none."""
    return event_type.split(".", 1)[0] if event_type else "unknown"


def _first_present(data: Mapping[str, Any], keys: Tuple[str, ...]) -> Optional[str]:
    for key in keys:
        value = data.get(key)
        if value:
            return value
    return None


def service_names(service_type: str) -> FrozenSet[str]:
    """Placeholder until the classifier lands: the service type itself."""
    return frozenset((service_type,))


def subject_of(
    event_type: str, payload: Mapping[str, Any], publisher_id: Optional[str] = None
) -> NotificationSubject:
    """Service type, node name and resource id of a notification.

    An unknown service, a missing object key or an object that is not a
    mapping leaves node name and resource id as None: the event is still
    worth delivering, it just cannot be filtered by node.
    """
    service_type = service_of(event_type)
    fields = OBJECT_FIELDS_BY_SERVICE.get(service_type)
    obj = payload.get(fields.payload_key) if fields else None
    if fields is None or not isinstance(obj, Mapping):
        return NotificationSubject(service_type, None, None)
    return NotificationSubject(
        service_type,
        _first_present(obj, fields.node_name_keys),
        _first_present(obj, fields.resource_id_keys),
    )
