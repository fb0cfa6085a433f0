"""Which OpenStack service sent a notification, and the names a filter may
use for it.

A notification names its service in one of three places, none of them
everywhere: ``publisher_id`` (the sending binary and host,
``nova-compute:host1``, ``ironic-conductor.host1``, or for legacy
notifications ``<topic>.<host>``: ``compute.host1``, ``network.host1``,
``volume.host1@lvm``, ``image.localhost``, ``identity.host1``), the payload
envelope of versioned notifications (``"<project>_object.data"``), and the
event type, whose first segment is usually the kind of object
(``instance.pause.end``, ``port.create.end``). Every lookup here is a table,
because it runs for every event on the API's event loop.
"""

from typing import Any, Dict, FrozenSet, List, Mapping, Optional

_SERVICE_NAME_GROUPS = (
    frozenset({"compute", "nova"}),
    frozenset({"baremetal", "ironic"}),
    frozenset({"network", "neutron"}),
    frozenset({"volume", "cinder", "block-storage"}),
    frozenset({"image", "glance"}),
    frozenset({"identity", "keystone"}),
)

SERVICE_NAMES: Dict[str, FrozenSet[str]] = {
    name: group for group in _SERVICE_NAME_GROUPS for name in group
}


def service_names(service_type: str) -> FrozenSet[str]:
    """Every name a service filter may use for events of this service type:
    the type and its OpenStack project name (``compute`` and ``nova``)."""
    names = SERVICE_NAMES.get(service_type)
    return names if names is not None else frozenset((service_type,))


SERVICE_TYPE_BY_PROJECT = {
    "nova": "compute",
    "ironic": "baremetal",
    "neutron": "network",
    "cinder": "volume",
    "glance": "image",
    "keystone": "identity",
}

# The part of a publisher id before its host. Versioned notifications name
# the binary (``nova-compute``, ``ironic-api``), looked up by its project
# prefix; legacy ones name a topic. ``scheduler`` (nova and cinder) and
# ``api`` (nova's keypairs and faults) are shared, so they are left to the
# event type.
SERVICE_TYPE_BY_PUBLISHER = {
    **SERVICE_TYPE_BY_PROJECT,
    "compute": "compute",
    "conductor": "compute",
    "aggregate": "compute",
    "network": "network",
    "volume": "volume",
    "snapshot": "volume",
    "backup": "volume",
    "capacity": "volume",
    "replication": "volume",
    "consistencygroup": "volume",
    "cgsnapshot": "volume",
    "group": "volume",
    "group_snapshot": "volume",
    "volumeType": "volume",
    "image": "image",
    "identity": "identity",
}

ENVELOPE_KEYS = tuple(
    (f"{project}_object.{part}", project)
    for part in ("data", "namespace")
    for project in SERVICE_TYPE_BY_PROJECT
)

# First segments of legacy event types that name an object, not a service.
SERVICE_TYPE_BY_EVENT_OBJECT = {
    **{
        kind: "compute"
        for kind in (
            "instance",
            "aggregate",
            "flavor",
            "keypair",
            "server_group",
            "compute_task",
            "service",
            "metrics",
            "libvirt",
        )
    },
    **{
        kind: "network"
        for kind in (
            "port",
            "subnet",
            "router",
            "floatingip",
            "security_group",
            "security_group_rule",
            "subnetpool",
            "address_scope",
            "address_group",
            "segment",
            "network_segment_range",
            "trunk",
            "rbac_policy",
            "port_forwarding",
            "local_ip",
            "ndp_proxy",
            "metering_label",
            "metering_label_rule",
        )
    },
    **{
        kind: "volume"
        for kind in (
            "snapshot",
            "backup",
            "consistencygroup",
            "cgsnapshot",
            "group",
            "group_snapshot",
            "capacity",
            "replication",
            "volume_type",
        )
    },
    **{
        kind: "image"
        for kind in (
            "task",
            "metadef_namespace",
            "metadef_object",
            "metadef_property",
            "metadef_resource_type",
            "metadef_tag",
        )
    },
}

# Shared first segments, decided by the second one.
SERVICE_TYPE_BY_EVENT_PREFIX = {
    ("scheduler", "select_destinations"): "compute",
    ("scheduler", "create_volume"): "volume",
    ("scheduler", "create_group"): "volume",
    ("scheduler", "create_backup"): "volume",
    ("scheduler", "extend_volume"): "volume",
    ("scheduler", "manage_existing"): "volume",
    ("scheduler", "manage_existing_snapshot"): "volume",
    ("scheduler", "migrate_volume_to_host"): "volume",
    ("scheduler", "retype"): "volume",
}


def service_of(event_type: str) -> str:
    """The first dot-separated segment of an event type; "unknown" for none."""
    return event_type.split(".", 1)[0] if event_type else "unknown"


def service_of_publisher(publisher_id: str) -> Optional[str]:
    binary = publisher_id.split(".", 1)[0].split(":", 1)[0]
    # No name in the table has a "-": a topic is looked up as it is, a
    # binary by its project prefix (``nova`` of ``nova-compute``).
    return SERVICE_TYPE_BY_PUBLISHER.get(binary.split("-", 1)[0])


def envelope_project(payload: Mapping[str, Any]) -> Optional[str]:
    for key, project in ENVELOPE_KEYS:
        if key in payload:
            return project
    return None


def service_of_event_kind(segments: List[str]) -> Optional[str]:
    service_type = SERVICE_TYPE_BY_EVENT_OBJECT.get(segments[0])
    if service_type is None and len(segments) > 1:
        service_type = SERVICE_TYPE_BY_EVENT_PREFIX.get((segments[0], segments[1]))
    return service_type
