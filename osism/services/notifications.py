"""What an OpenStack notification is about: its service, the host it
concerns and the object.

Which service sent it is :mod:`osism.services.openstack_services`'s job; this
module finds the node (only ever a host) and the resource id in the payload,
by the kind of object: a table per service, because ``subject_of`` runs for
every event on the API's event loop.
"""

from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from osism.services.openstack_services import (
    SERVICE_TYPE_BY_PROJECT,
    envelope_project,
    service_of_event_kind,
    service_of_publisher,
)


class NotificationSubject(NamedTuple):
    service_type: str
    node_name: Optional[str]
    resource_id: Optional[str]


class ObjectFields(NamedTuple):
    """Where an object of a notification keeps its id and its host.

    ``payload_key`` names the nested object; None means the payload itself.
    The first key with a non-empty string value wins.
    """

    payload_key: Optional[str]
    resource_id_keys: Tuple[str, ...]
    node_name_keys: Tuple[str, ...]


NodeAndResource = Tuple[Optional[str], Optional[str]]
Extractor = Callable[[List[str], Mapping[str, Any], Optional[str]], NodeAndResource]

# --- the seed's events -----------------------------------------------------

_IRONIC = ObjectFields("ironic_object.data", ("uuid",), ("name",))
_NOVA = ObjectFields("nova_object.data", ("uuid",), ("host", "name"))
_NEUTRON = ObjectFields("neutron_object.data", ("id", "uuid"), ("name", "device_id"))
_CINDER = ObjectFields("cinder_object.data", ("id", "uuid"), ("name", "display_name"))
_GLANCE = ObjectFields("glance_object.data", ("id", "uuid"), ("name",))
_KEYSTONE = ObjectFields("keystone_object.data", ("id", "uuid"), ("name",))

# The seed's rule, kept for events that come without a publisher id and
# whose event type starts with one of these keys (``osism events publish``,
# the seed's tests and tools built on them).
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

# --- node and resource -----------------------------------------------------


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _first_text(data: Mapping[str, Any], keys: Tuple[str, ...]) -> Optional[str]:
    for key in keys:
        value = _text(data.get(key))
        if value is not None:
            return value
    return None


def _fields(payload: Mapping[str, Any], fields: ObjectFields) -> NodeAndResource:
    obj = payload if fields.payload_key is None else payload.get(fields.payload_key)
    if not isinstance(obj, Mapping):
        return None, None
    return (
        _first_text(obj, fields.node_name_keys),
        _first_text(obj, fields.resource_id_keys),
    )


def _publisher_host(publisher_id: Optional[str]) -> Optional[str]:
    if publisher_id is None:
        return None
    _, colon, host = publisher_id.partition(":")
    if not colon:
        _, _, host = publisher_id.partition(".")
    return host or None


# Ironic objects other than nodes, as the second segment of their event
# types (``baremetal.port.update.end``). A node is a host; they are not.
IRONIC_NON_NODE_OBJECTS = frozenset(
    {
        "allocation",
        "chassis",
        "deploy_template",
        "deploytemplate",
        "inspection_rule",
        "port",
        "portgroup",
        "runbook",
        "volumeconnector",
        "volumetarget",
    }
)


def _is_ironic_node(segments: List[str], payload: Mapping[str, Any]) -> bool:
    """Whether an ironic payload describes a node: its payload class
    (``NodePayload``, ``NodeSetPowerStatePayload``, ...) when it names one,
    else the object its event type names."""
    payload_name = _text(payload.get("ironic_object.name"))
    if payload_name is not None:
        return payload_name.startswith("Node")
    return len(segments) < 2 or segments[1] not in IRONIC_NON_NODE_OBJECTS


def _ironic(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    node_name, resource_id = _fields(payload, _IRONIC)
    return (node_name if _is_ironic_node(segments, payload) else None), resource_id


# Nova's versioned payloads by the kind of object, the first segment of the
# event type. ``host`` is always a compute host in nova's payloads; a kind
# without a host (a flavor, a keypair, a server group) has no node.
_NOVA_DEFAULT = ObjectFields("nova_object.data", ("uuid",), ("host",))
NOVA_FIELDS_BY_KIND = {
    "flavor": ObjectFields("nova_object.data", ("flavorid",), ()),
    "keypair": ObjectFields("nova_object.data", ("name",), ()),
    "server_group": ObjectFields("nova_object.data", ("uuid",), ()),
    "compute_task": ObjectFields("nova_object.data", ("instance_uuid",), ()),
    "scheduler": ObjectFields("nova_object.data", ("instance_uuid",), ()),
    "volume": ObjectFields("nova_object.data", ("volume_id",), ()),
    "compute": ObjectFields("nova_object.data", (), ()),
    "libvirt": ObjectFields("nova_object.data", (), ()),
    "metrics": ObjectFields("nova_object.data", (), ("host",)),
}

# Legacy nova: ``compute.instance.*`` and ``compute.metrics.update`` carry
# the kind in the second segment, ``keypair.*`` and ``volume.usage`` in the
# first.
_NOVA_LEGACY_DEFAULT = ObjectFields(None, ("instance_id", "uuid"), ("host",))
NOVA_LEGACY_FIELDS_BY_KIND = {
    "instance": ObjectFields(None, ("instance_id",), ("host",)),
    "keypair": ObjectFields(None, ("key_name",), ()),
    "volume": ObjectFields(None, ("volume_id",), ()),
    "libvirt": ObjectFields(None, (), ()),
    "metrics": ObjectFields(None, (), ("host",)),
}

# Kinds whose event concerns the host that sends it (a compute host that
# cannot reach its hypervisor) without naming it in the payload.
NODE_IS_PUBLISHER_HOST = frozenset({"libvirt"})


def _nova(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    kind = segments[0]
    if kind in NODE_IS_PUBLISHER_HOST:
        return _publisher_host(publisher_id), None
    return _fields(payload, NOVA_FIELDS_BY_KIND.get(kind, _NOVA_DEFAULT))


def _nova_legacy(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    kind = (
        segments[1] if segments[0] == "compute" and len(segments) > 1 else segments[0]
    )
    if kind in NODE_IS_PUBLISHER_HOST:
        return _publisher_host(publisher_id), None
    return _fields(payload, NOVA_LEGACY_FIELDS_BY_KIND.get(kind, _NOVA_LEGACY_DEFAULT))


# Neutron: ``<resource>.<action>.<phase>`` with the resource under its own
# key, on delete also (or only) its id as ``<resource>_id``.
NEUTRON_OBJECT_KEY_BY_PREFIX = {("router", "interface"): "router_interface"}


def _neutron(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    kind = segments[0]
    key = kind
    if len(segments) > 1:
        key = NEUTRON_OBJECT_KEY_BY_PREFIX.get((kind, segments[1]), kind)
    node_name, resource_id = _fields(
        payload, ObjectFields(key, ("id",), ("binding:host_id",))
    )
    if resource_id is None:
        resource_id = _first_text(payload, (kind + "_id", "id"))
    return node_name, resource_id


# Cinder: ``volume_id``, ``snapshot_id``, ... at the top of the payload;
# ``host`` is the service's ``hostname@backend#pool``.
CINDER_RESOURCE_KEY_BY_KIND = {
    "replication": "volume_id",
    "scheduler": "volume_id",
}


def _cinder(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    kind = segments[0]
    node_name = None
    host = _text(payload.get("host"))
    if host is not None:
        node_name = _text(host.split("@", 1)[0].split("#", 1)[0])
    key = CINDER_RESOURCE_KEY_BY_KIND.get(kind, kind + "_id")
    return node_name, _text(payload.get(key))


_GLANCE_LEGACY = ObjectFields(None, ("id", "image_id", "task_id", "namespace"), ())


def _glance(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    return _fields(payload, _GLANCE_LEGACY)


_CADF_TARGET = ObjectFields("target", ("id",), ())


def _keystone(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    """Basic notifications carry ``resource_info``, CADF ones a ``target``."""
    resource_id = _text(payload.get("resource_info"))
    if resource_id is None:
        _, resource_id = _fields(payload, _CADF_TARGET)
    return None, resource_id


def _versioned_other(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    """Envelopes of projects that do not send versioned notifications today."""
    data_key = f"{envelope_project(payload)}_object.data"
    _, resource_id = _fields(payload, ObjectFields(data_key, ("uuid", "id"), ()))
    return None, resource_id


def _nothing(
    segments: List[str], payload: Mapping[str, Any], publisher_id: Optional[str]
) -> NodeAndResource:
    return None, None


EXTRACTOR_BY_ENVELOPE: Dict[str, Extractor] = {
    "nova": _nova,
    "ironic": _ironic,
}

EXTRACTOR_BY_SERVICE_TYPE: Dict[str, Extractor] = {
    "compute": _nova_legacy,
    "network": _neutron,
    "volume": _cinder,
    "image": _glance,
    "identity": _keystone,
}


def _seed_subject(
    service_type: str, segments: List[str], payload: Mapping[str, Any]
) -> NotificationSubject:
    node_name, resource_id = _fields(payload, OBJECT_FIELDS_BY_SERVICE[service_type])
    if service_type == "baremetal" and not _is_ironic_node(segments, payload):
        node_name = None
    return NotificationSubject(service_type, node_name, resource_id)


def subject_of(
    event_type: str,
    payload: Mapping[str, Any],
    publisher_id: Optional[str] = None,
) -> NotificationSubject:
    """Service type, node name and resource id of a notification.

    The service type is a service *type* (``compute``, ``baremetal``,
    ``network``, ``volume``, ``image``, ``identity``) taken from the
    publisher id, else the payload envelope, else the kind of object the
    event type names, else the event type's first segment. The node name is
    only ever a host (a compute host, an ironic node, a port's binding host,
    a cinder volume's host), never the name of a flavor, image or user. A
    payload of an unexpected shape gives None, never an error.

    Events without a publisher id whose event type starts with a service
    key of the seed (``baremetal``, ``compute``, ``nova``, ``network``, ...)
    keep the seed's rule (see ``OBJECT_FIELDS_BY_SERVICE``).
    """
    segments = event_type.split(".") if event_type else ["unknown"]
    first = segments[0]
    if not isinstance(payload, Mapping):
        payload = {}
    if not isinstance(publisher_id, str):
        publisher_id = None
    if publisher_id is None and first in OBJECT_FIELDS_BY_SERVICE:
        return _seed_subject(first, segments, payload)

    project = envelope_project(payload)
    service_type = (
        (publisher_id and service_of_publisher(publisher_id))
        or (project and SERVICE_TYPE_BY_PROJECT[project])
        or service_of_event_kind(segments)
        or first
    )
    if project is not None:
        extractor = EXTRACTOR_BY_ENVELOPE.get(project, _versioned_other)
    else:
        extractor = EXTRACTOR_BY_SERVICE_TYPE.get(service_type, _nothing)
    node_name, resource_id = extractor(segments, payload, publisher_id)
    return NotificationSubject(service_type, node_name, resource_id)
