"""OpenStack notifications as clouds send them, and what each one is about.

Every row is one shape of notification: ``notification`` is the message as
it arrives on the bus (``event_type``, ``publisher_id``, ``priority``,
``payload`` in its real nesting), and ``service_type``, ``node_name`` and
``resource_id`` are what an operator filtering the stream must see. Fields
that do not bear on service, host or object are left out to keep rows short.

Sources (public repositories, path):

- nova, versioned: one row per sample file of ``openstack/nova``
  ``doc/notification_samples/*.json`` (row id = file name), with the
  ``$ref`` payloads of ``doc/notification_samples/common_payloads/*.json``
  resolved (``InstancePayload``, ``InstanceActionPayload``,
  ``AggregatePayload``, ``FlavorPayload``, ``KeypairPayload``,
  ``ServerGroupPayload``, ``ServiceStatusPayload``, ``ComputeTaskPayload``,
  ``RequestSpecPayload``, ...) and the sample's own overrides applied
  (``host: null`` of ``instance-delete-*_not_scheduled``, ``host2`` of
  ``instance-evacuate``, ...). The sample list is the one
  ``nova/notifications/objects/*.py`` declares with ``notification_sample``.
- ironic: the examples and event lists of ``openstack/ironic``
  ``doc/source/admin/notifications.rst`` (node CRUD, maintenance, console,
  power, provision; chassis, port, port group, deploy template, volume
  connector and target CRUD); allocations from the ``AllocationCRUDPayload``
  fields in ``ironic/objects/allocation.py``. The documented nodes have
  ``name: None``; rows marked "named" give the same payload a name.
- keystone: ``openstack/keystone`` ``doc/source/admin/event_notifications.rst``
  (basic and CADF examples).
- glance: ``openstack/glance`` ``doc/source/admin/notifications.rst``
  (event types and payload fields), publisher ``image.localhost`` (glance's
  ``default_publisher_id``).
- neutron: the notifications of ``openstack/neutron``
  ``neutron/api/v2/base.py`` (``<resource>.<action>.start/end``, the
  resource under its own key, ``<resource>_id`` on delete) with the resource
  bodies of ``openstack/neutron-lib`` ``api-ref/source/v2/samples/ports/``
  (``port-create-response.json``, ``port-bind-show-response.json``),
  publisher ``network.<host>``.
- cinder: the payload fields of ``openstack/cinder``
  ``cinder/volume/volume_utils.py`` (``_usage_from_volume``,
  ``_usage_from_snapshot``, ``_usage_from_backup``, groups, cgsnapshots)
  and its publishers ``<topic>.<host>`` (``volume.host1@lvmdriver-1``);
  the values are a devstack-like host, not copied from a document.
- nova, legacy: ``compute.instance.*`` (``info_from_instance`` of
  ``openstack/nova`` ``nova/notifications/base.py``), ``keypair.*``
  (``KeypairAPI._notify`` in ``nova/compute/api.py``, publisher ``api.<host>``).
"""

import copy
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple


class Sample(NamedTuple):
    id: str
    notification: Dict[str, Any]
    service_type: str
    node_name: Optional[str]
    resource_id: Optional[str]

    @property
    def event_type(self) -> str:
        return self.notification["event_type"]

    @property
    def publisher_id(self) -> Optional[str]:
        return self.notification["publisher_id"]

    @property
    def payload(self) -> Any:
        return self.notification["payload"]


# The names an operator may give a service filter, by service type: the
# type and its OpenStack project (and cinder's official type).
SERVICE_FILTER_NAMES = {
    "compute": {"compute", "nova"},
    "baremetal": {"baremetal", "ironic"},
    "network": {"network", "neutron"},
    "volume": {"volume", "cinder", "block-storage"},
    "image": {"image", "glance"},
    "identity": {"identity", "keystone"},
}


def received_by(
    service: Optional[str] = None,
    node: Optional[str] = None,
    samples: Optional[Iterable[Sample]] = None,
) -> List[Sample]:
    """The rows a WebSocket client receives that filters by this service
    name and/or node name (None: no such filter)."""
    return [
        sample
        for sample in (SAMPLES if samples is None else samples)
        if (
            service is None
            or service
            in SERVICE_FILTER_NAMES.get(sample.service_type, {sample.service_type})
        )
        and (node is None or node == sample.node_name)
    ]


def notification(
    event_type: str,
    publisher_id: Optional[str],
    payload: Any,
    priority: str = "INFO",
) -> Dict[str, Any]:
    return {
        "event_type": event_type,
        "publisher_id": publisher_id,
        "priority": priority,
        "payload": payload,
    }


def _versioned(project: str, name: str, version: str, data: Any) -> Dict[str, Any]:
    return {
        f"{project}_object.name": name,
        f"{project}_object.namespace": project,
        f"{project}_object.version": version,
        f"{project}_object.data": data,
    }


def _nova(name: str, version: str, data: Any) -> Dict[str, Any]:
    return _versioned("nova", name, version, data)


# --- nova, versioned -------------------------------------------------------

INSTANCE_UUID = "178b0921-8f85-4257-88b6-2e743b5a975c"
FLAVOR_ID = "a22d5517-147c-4147-a0d1-e698df5cd4e3"
AGGREGATE_UUID = "788608ec-ebdc-45c5-bc7f-e5f24ab92c80"
SERVER_GROUP_UUID = "788608ec-ebdc-45c5-bc7f-e5f24ab92c80"
SERVICE_UUID = "fa69c544-906b-4a6a-a9c6-c1f7a8078c73"
REQUEST_INSTANCE_UUID = "d5e6a7b7-80e5-4166-85a3-cd6115201082"
VOLUME_ID = "a07f71dc-8151-4e7d-a0cc-cd24a3f11113"

FLAVOR_PAYLOAD = _nova(
    "FlavorPayload",
    "1.4",
    {
        "flavorid": FLAVOR_ID,
        "name": "test_flavor",
        "vcpus": 1,
        "memory_mb": 512,
        "root_gb": 1,
        "extra_specs": {"hw:watchdog_action": "disabled"},
        "projects": None,
        "description": None,
    },
)

# common_payloads/InstancePayload.json (the fields that matter here).
INSTANCE_DATA: Dict[str, Any] = {
    "uuid": INSTANCE_UUID,
    "display_name": "some-server",
    "host_name": "some-server",
    "host": "compute",
    "node": "fake-mini",
    "availability_zone": "nova",
    "state": "active",
    "task_state": None,
    "power_state": "running",
    "tenant_id": "6f70656e737461636b20342065766572",
    "user_id": "fake",
    "key_name": "my-key",
    "image_uuid": "155d900f-4e14-4e4c-a73d-069cbf4541e6",
    "flavor": FLAVOR_PAYLOAD,
    "ip_addresses": [
        _nova(
            "IpPayload",
            "1.0",
            {
                "address": "192.168.1.3",
                "mac": "fa:16:3e:4c:2c:30",
                "port_uuid": "ce531f90-199f-48c0-816c-13e38010b442",
                "device_name": "tapce531f90-19",
                "label": "private-network",
                "version": 4,
            },
        )
    ],
    "block_devices": [
        _nova(
            "BlockDevicePayload",
            "1.0",
            {"device_name": "/dev/sdb", "boot_index": None, "volume_id": VOLUME_ID},
        )
    ],
    "request_id": "req-5b6c791d-5709-4f36-8fbe-c3e02869e35d",
    "action_initiator_user": "fake",
    "action_initiator_project": "6f70656e737461636b20342065766572",
}

# The payload class and version each instance sample's $ref resolves to.
INSTANCE_PAYLOADS: Dict[str, Tuple[str, str, Dict[str, Any]]] = {
    "action": ("InstanceActionPayload", "1.9", {"fault": None}),
    "create": (
        "InstanceCreatePayload",
        "1.10",
        {"fault": None, "tags": ["tag"], "keypairs": []},
    ),
    "update": (
        "InstanceUpdatePayload",
        "1.6",
        {
            "old_display_name": None,
            "state_update": _nova(
                "InstanceStateUpdatePayload",
                "1.0",
                {"old_state": "active", "state": "active"},
            ),
        },
    ),
    "exists": (
        "InstanceExistsPayload",
        "2.0",
        {
            "audit_period": _nova(
                "AuditPeriodPayload",
                "1.0",
                {
                    "audit_period_beginning": "2012-10-01T00:00:00Z",
                    "audit_period_ending": "2012-10-29T13:42:11Z",
                },
            )
        },
    ),
    "volume": ("InstanceActionVolumePayload", "1.5", {"volume_id": VOLUME_ID}),
    "volume_swap": (
        "InstanceActionVolumeSwapPayload",
        "1.7",
        {
            "new_volume_id": "227cc671-f30b-4488-96fd-7d0bf13648d8",
            "old_volume_id": VOLUME_ID,
        },
    ),
    "rebuild": (
        "InstanceActionRebuildPayload",
        "1.10",
        {"image_uuid": "a2459075-d96c-40d5-893e-577ff92e721c"},
    ),
    "rescue": (
        "InstanceActionRescuePayload",
        "1.2",
        {"rescue_image_ref": "a2459075-d96c-40d5-893e-577ff92e721c"},
    ),
    "resize_prep": (
        "InstanceActionResizePrepPayload",
        "1.0",
        {
            "new_flavor": _nova(
                "FlavorPayload",
                "1.4",
                {
                    "flavorid": "d5a8bb54-365a-45ae-abdb-38d249df7845",
                    "name": "other_flavor",
                },
            ),
            "task_state": "resize_prep",
        },
    ),
    "snapshot": (
        "InstanceActionSnapshotPayload",
        "1.10",
        {"snapshot_image_id": "d2aae36f-785c-4518-8016-bc9534d9fc7f"},
    ),
    "share": (
        "InstanceActionSharePayload",
        "1.0",
        {"share_id": "e8debdc0-447a-4376-a10a-4cd9122d7986"},
    ),
    "share_active": (
        "InstanceActionPayload",
        "1.9",
        {"fault": None, "shares": [{"status": "active"}]},
    ),
    "share_inactive": (
        "InstanceActionPayload",
        "1.9",
        {"fault": None, "shares": [{"status": "inactive"}]},
    ),
}

FAULT = _nova(
    "ExceptionPayload",
    "1.1",
    {
        "exception": "FlavorDiskTooSmall",
        "exception_message": "The created instance's disk would be too small.",
        "function_name": "_build_resources",
        "module_name": "nova.compute.manager",
    },
)


def instance_sample(
    sample_file: str,
    event_type: str,
    payload: str = "action",
    publisher_id: str = "nova-compute:compute",
    priority: str = "INFO",
    node_name: Optional[str] = "compute",
    **overrides: Any,
) -> Sample:
    """A nova instance sample: its payload resolved from InstancePayload,
    then the sample file's own overrides."""
    name, version, extra = INSTANCE_PAYLOADS[payload]
    data = {**copy.deepcopy(INSTANCE_DATA), **copy.deepcopy(extra), **overrides}
    if priority == "ERROR":
        data["fault"] = FAULT
    return Sample(
        sample_file,
        notification(event_type, publisher_id, _nova(name, version, data), priority),
        "compute",
        node_name,
        INSTANCE_UUID,
    )


def _instance_action_samples() -> List[Sample]:
    """instance-<action>-<phase>.json of the plain instance actions, all
    sent by nova-compute on host ``compute`` about an instance on it."""
    actions = {
        "delete": ("start", "end"),
        "interface_attach": ("start", "end", "error"),
        "interface_detach": ("start", "end"),
        "live_migration_abort": ("start", "end"),
        "live_migration_force_complete": ("start", "end"),
        "live_migration_post": ("start", "end"),
        "live_migration_rollback": ("start", "end"),
        "pause": ("start", "end"),
        "power_off": ("start", "end"),
        "power_on": ("start", "end"),
        "reboot": ("start", "end", "error"),
        "resize": ("start", "end", "error"),
        "resize_confirm": ("start", "end"),
        "resize_finish": ("start", "end"),
        "resize_revert": ("start", "end"),
        "restore": ("start", "end"),
        "resume": ("start", "end"),
        "shelve": ("start", "end"),
        "shelve_offload": ("start",),
        "shutdown": ("start", "end"),
        "soft_delete": ("start", "end"),
        "suspend": ("start", "end"),
        "trigger_crash_dump": ("start", "end"),
        "unpause": ("start", "end"),
        "unrescue": ("start", "end"),
    }
    payload_by_action = {
        "rebuild": "rebuild",
        "rescue": "rescue",
        "resize_prep": "resize_prep",
        "snapshot": "snapshot",
        "volume_attach": "volume",
        "volume_detach": "volume",
        "volume_swap": "volume_swap",
    }
    actions.update(
        {
            "rebuild": ("start", "end", "error"),
            "rescue": ("start", "end"),
            "resize_prep": ("start", "end"),
            "snapshot": ("start", "end"),
            "volume_attach": ("start", "end", "error"),
            "volume_detach": ("start", "end"),
            "volume_swap": ("start", "end", "error"),
        }
    )
    return [
        instance_sample(
            f"instance-{action}-{phase}.json",
            f"instance.{action}.{phase}",
            payload=payload_by_action.get(action, "action"),
            priority="ERROR" if phase == "error" else "INFO",
        )
        for action, phases in actions.items()
        for phase in phases
    ]


def _aggregate(sample_file: str, event_type: str, **data: Any) -> Sample:
    payload = _nova(
        "AggregatePayload",
        "1.1",
        {
            "name": "my-aggregate",
            "metadata": {"availability_zone": "nova"},
            "uuid": AGGREGATE_UUID,
            "hosts": [],
            "id": 1,
            **data,
        },
    )
    return Sample(
        sample_file,
        notification(event_type, "nova-api:fake-mini", payload),
        "compute",
        None,
        AGGREGATE_UUID,
    )


def _flavor(sample_file: str, event_type: str) -> Sample:
    return Sample(
        sample_file,
        notification(event_type, "nova-api:fake-mini", FLAVOR_PAYLOAD),
        "compute",
        None,
        FLAVOR_ID,
    )


def _keypair(sample_file: str, event_type: str) -> Sample:
    payload = _nova(
        "KeypairPayload",
        "1.0",
        {
            "user_id": "fake",
            "name": "my-key",
            "fingerprint": "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c",
            "type": "ssh",
        },
    )
    return Sample(
        sample_file,
        notification(event_type, "nova-api:fake-mini", payload),
        "compute",
        None,
        "my-key",
    )


def _server_group(sample_file: str, event_type: str, **data: Any) -> Sample:
    payload = _nova(
        "ServerGroupPayload",
        "1.1",
        {
            "uuid": SERVER_GROUP_UUID,
            "name": "test-server-group",
            "project_id": "6f70656e737461636b20342065766572",
            "user_id": "fake",
            "policy": "anti-affinity",
            "members": [],
            "hosts": None,
            **data,
        },
    )
    return Sample(
        sample_file,
        notification(event_type, "nova-api:fake-mini", payload),
        "compute",
        None,
        SERVER_GROUP_UUID,
    )


def _service(sample_file: str, event_type: str, host: str) -> Sample:
    payload = _nova(
        "ServiceStatusPayload",
        "1.1",
        {
            "host": host,
            "binary": "nova-compute",
            "topic": "compute",
            "disabled": False,
            "forced_down": False,
            "uuid": SERVICE_UUID,
        },
    )
    return Sample(
        sample_file,
        notification(event_type, f"nova-compute:{host}", payload),
        "compute",
        host,
        SERVICE_UUID,
    )


def _compute_task(sample_file: str, event_type: str) -> Sample:
    payload = _nova(
        "ComputeTaskPayload",
        "1.0",
        {
            "instance_uuid": REQUEST_INSTANCE_UUID,
            "reason": _nova(
                "ExceptionPayload",
                "1.1",
                {"exception": "NoValidHost", "function_name": "_schedule_instances"},
            ),
            "request_spec": _nova(
                "RequestSpecPayload",
                "1.1",
                {"instance_uuid": REQUEST_INSTANCE_UUID, "flavor": FLAVOR_PAYLOAD},
            ),
            "state": "error",
        },
    )
    return Sample(
        sample_file,
        notification(event_type, "nova-conductor:fake-mini", payload, "ERROR"),
        "compute",
        None,
        REQUEST_INSTANCE_UUID,
    )


def _select_destinations(sample_file: str, event_type: str) -> Sample:
    payload = _nova(
        "RequestSpecPayload",
        "1.1",
        {
            "instance_uuid": REQUEST_INSTANCE_UUID,
            "num_instances": 1,
            "flavor": FLAVOR_PAYLOAD,
            "ignore_hosts": None,
            "force_hosts": None,
            "force_nodes": None,
        },
    )
    return Sample(
        sample_file,
        notification(event_type, "nova-scheduler:fake-mini", payload),
        "compute",
        None,
        REQUEST_INSTANCE_UUID,
    )


NOVA_SAMPLES: List[Sample] = [
    _aggregate("aggregate-add_host-start.json", "aggregate.add_host.start"),
    _aggregate(
        "aggregate-add_host-end.json", "aggregate.add_host.end", hosts=["compute"]
    ),
    _aggregate(
        "aggregate-cache_images-start.json",
        "aggregate.cache_images.start",
        hosts=["compute"],
    ),
    Sample(
        "aggregate-cache_images-progress.json",
        notification(
            "aggregate.cache_images.progress",
            "nova-conductor:fake-mini",
            _nova(
                "AggregateCachePayload",
                "1.0",
                {
                    "name": "my-aggregate",
                    "uuid": AGGREGATE_UUID,
                    "host": "compute",
                    "total": 1,
                    "index": 1,
                    "images_cached": ["155d900f-4e14-4e4c-a73d-069cbf4541e6"],
                    "images_failed": [],
                    "id": 1,
                },
            ),
        ),
        "compute",
        "compute",
        AGGREGATE_UUID,
    ),
    _aggregate(
        "aggregate-cache_images-end.json",
        "aggregate.cache_images.end",
        hosts=["compute"],
    ),
    _aggregate("aggregate-create-start.json", "aggregate.create.start"),
    _aggregate("aggregate-create-end.json", "aggregate.create.end"),
    _aggregate("aggregate-delete-start.json", "aggregate.delete.start"),
    _aggregate("aggregate-delete-end.json", "aggregate.delete.end"),
    _aggregate(
        "aggregate-remove_host-start.json",
        "aggregate.remove_host.start",
        hosts=["compute"],
    ),
    _aggregate("aggregate-remove_host-end.json", "aggregate.remove_host.end"),
    _aggregate(
        "aggregate-update_metadata-start.json", "aggregate.update_metadata.start"
    ),
    _aggregate(
        "aggregate-update_metadata-end.json",
        "aggregate.update_metadata.end",
        metadata={"availability_zone": "AZ-1"},
    ),
    _aggregate("aggregate-update_prop-start.json", "aggregate.update_prop.start"),
    _aggregate(
        "aggregate-update_prop-end.json",
        "aggregate.update_prop.end",
        name="my-new-aggregate",
    ),
    Sample(
        "compute-exception.json",
        notification(
            "compute.exception",
            "nova-api:fake-mini",
            _nova(
                "ExceptionPayload",
                "1.0",
                {
                    "exception": "AggregateNameExists",
                    "exception_message": (
                        "Aggregate versioned_exc_aggregate already exists."
                    ),
                    "function_name": "aggregate_create",
                    "module_name": "nova.db.sqlalchemy.api",
                },
            ),
            "ERROR",
        ),
        "compute",
        None,
        None,
    ),
    _compute_task(
        "compute_task-build_instances-error.json", "compute_task.build_instances.error"
    ),
    _compute_task(
        "compute_task-migrate_server-error.json", "compute_task.migrate_server.error"
    ),
    _compute_task(
        "compute_task-rebuild_server-error.json", "compute_task.rebuild_server.error"
    ),
    _flavor("flavor-create.json", "flavor.create"),
    _flavor("flavor-update.json", "flavor.update"),
    _flavor("flavor-delete.json", "flavor.delete"),
    instance_sample(
        "instance-create-start.json",
        "instance.create.start",
        payload="create",
        node_name=None,
        host=None,
        node=None,
        state="building",
        power_state="pending",
    ),
    instance_sample("instance-create-end.json", "instance.create.end", "create"),
    instance_sample(
        "instance-create-error.json",
        "instance.create.error",
        "create",
        priority="ERROR",
        state="building",
    ),
    instance_sample(
        "instance-delete-start_compute_down.json",
        "instance.delete.start",
        publisher_id="nova-api:fake-mini",
        task_state="deleting",
    ),
    instance_sample(
        "instance-delete-end_compute_down.json",
        "instance.delete.end",
        publisher_id="nova-api:fake-mini",
        state="deleted",
    ),
    instance_sample(
        "instance-delete-start_not_scheduled.json",
        "instance.delete.start",
        publisher_id="nova-api:fake-mini",
        node_name=None,
        host=None,
        node=None,
        state="error",
        task_state="deleting",
    ),
    instance_sample(
        "instance-delete-end_not_scheduled.json",
        "instance.delete.end",
        publisher_id="nova-api:fake-mini",
        node_name=None,
        host=None,
        node=None,
        state="deleted",
    ),
    instance_sample(
        "instance-evacuate.json",
        "instance.evacuate",
        publisher_id="nova-api:host2",
        node_name="host2",
        host="host2",
        node="host2",
        task_state="rebuilding",
    ),
    instance_sample("instance-exists.json", "instance.exists", "exists"),
    instance_sample(
        "instance-live_migration_pre-start.json",
        "instance.live_migration_pre.start",
        publisher_id="nova-compute:host2",
        task_state="migrating",
    ),
    instance_sample(
        "instance-live_migration_pre-end.json",
        "instance.live_migration_pre.end",
        publisher_id="nova-compute:host2",
        task_state="migrating",
    ),
    instance_sample(
        "instance-live_migration_post_dest-start.json",
        "instance.live_migration_post_dest.start",
        publisher_id="nova-compute:host2",
        task_state="migrating",
    ),
    instance_sample(
        "instance-live_migration_post_dest-end.json",
        "instance.live_migration_post_dest.end",
        publisher_id="nova-compute:host2",
        node_name="host2",
        host="host2",
        node="host2",
    ),
    instance_sample(
        "instance-live_migration_rollback_dest-start.json",
        "instance.live_migration_rollback_dest.start",
        publisher_id="nova-compute:host2",
    ),
    instance_sample(
        "instance-live_migration_rollback_dest-end.json",
        "instance.live_migration_rollback_dest.end",
        publisher_id="nova-compute:host2",
        task_state="migrating",
    ),
    instance_sample(
        "instance-lock.json",
        "instance.lock",
        publisher_id="nova-api:fake-mini",
        locked=True,
    ),
    instance_sample(
        "instance-lock-with-reason.json",
        "instance.lock",
        publisher_id="nova-api:fake-mini",
        locked=True,
        locked_reason="global warming",
    ),
    instance_sample(
        "instance-unlock.json", "instance.unlock", publisher_id="nova-api:fake-mini"
    ),
    instance_sample(
        "instance-power_on_share-start.json",
        "instance.power_on.start",
        "share_inactive",
        task_state="powering-on",
        state="stopped",
        power_state="shutdown",
    ),
    instance_sample(
        "instance-power_on_share-end.json", "instance.power_on.end", "share_active"
    ),
    instance_sample(
        "instance-rebuild_scheduled.json",
        "instance.rebuild_scheduled",
        "rebuild",
        publisher_id="nova-conductor:compute",
        task_state="rebuilding",
    ),
    *[
        instance_sample(
            f"instance-{action}-{phase}.json",
            f"instance.{action}.{phase}",
            "share",
            publisher_id="nova-api:compute",
            priority="ERROR" if phase == "error" else "INFO",
        )
        for action in ("share_attach", "share_detach")
        for phase in ("start", "end", "error")
    ],
    instance_sample(
        "instance-shelve_offload-end.json",
        "instance.shelve_offload.end",
        node_name=None,
        host=None,
        node=None,
        state="shelved_offloaded",
    ),
    instance_sample(
        "instance-unshelve-start.json",
        "instance.unshelve.start",
        node_name=None,
        host=None,
        node=None,
        state="shelved_offloaded",
        task_state="unshelving",
    ),
    instance_sample("instance-unshelve-end.json", "instance.unshelve.end"),
    instance_sample(
        "instance-update.json",
        "instance.update",
        "update",
        publisher_id="nova-compute:fake-mini",
    ),
    *_instance_action_samples(),
    _keypair("keypair-create-start.json", "keypair.create.start"),
    _keypair("keypair-create-end.json", "keypair.create.end"),
    _keypair("keypair-delete-start.json", "keypair.delete.start"),
    _keypair("keypair-delete-end.json", "keypair.delete.end"),
    _keypair("keypair-import-start.json", "keypair.import.start"),
    _keypair("keypair-import-end.json", "keypair.import.end"),
    Sample(
        "libvirt-connect-error.json",
        notification(
            "libvirt.connect.error",
            "nova-compute:compute",
            _nova(
                "LibvirtErrorPayload",
                "1.0",
                {
                    "ip": "10.0.2.15",
                    "reason": _nova(
                        "ExceptionPayload",
                        "1.1",
                        {
                            "exception": "libvirtError",
                            "function_name": "_get_connection",
                            "module_name": "nova.virt.libvirt.host",
                        },
                    ),
                },
            ),
            "ERROR",
        ),
        "compute",
        "compute",
        None,
    ),
    Sample(
        "metrics-update.json",
        notification(
            "metrics.update",
            "nova-compute:compute",
            _nova(
                "MetricsPayload",
                "1.0",
                {
                    "host_ip": "10.0.2.15",
                    "host": "compute",
                    "nodename": "fake-mini",
                    "metrics": [
                        _nova(
                            "MetricPayload",
                            "1.0",
                            {
                                "name": "cpu.frequency",
                                "source": "fake.SmallFakeDriver",
                                "value": 800,
                            },
                        )
                    ],
                },
            ),
        ),
        "compute",
        "compute",
        None,
    ),
    _select_destinations(
        "scheduler-select_destinations-start.json",
        "scheduler.select_destinations.start",
    ),
    _select_destinations(
        "scheduler-select_destinations-end.json", "scheduler.select_destinations.end"
    ),
    _server_group("server_group-create.json", "server_group.create"),
    _server_group("server_group-delete.json", "server_group.delete"),
    _server_group(
        "server_group-add_member.json",
        "server_group.add_member",
        members=["54238a20-f9be-47a7-897e-d7cb0e4c03d0"],
    ),
    _service("service-create.json", "service.create", "host2"),
    _service("service-delete.json", "service.delete", "host2"),
    _service("service-update.json", "service.update", "host1"),
    Sample(
        "volume-usage.json",
        notification(
            "volume.usage",
            "nova-compute:compute",
            _nova(
                "VolumeUsagePayload",
                "1.0",
                {
                    "availability_zone": "nova",
                    "instance_uuid": "88fde343-13a8-4047-84fb-2657d5e702f9",
                    "project_id": "6f70656e737461636b20342065766572",
                    "user_id": "fake",
                    "volume_id": VOLUME_ID,
                    "reads": 0,
                    "writes": 0,
                },
            ),
        ),
        "compute",
        None,
        VOLUME_ID,
    ),
]


# --- ironic ----------------------------------------------------------------

NODE_UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"

# The node of doc/source/admin/notifications.rst (fields that matter here).
NODE_DATA: Dict[str, Any] = {
    "uuid": NODE_UUID,
    "name": None,
    "chassis_uuid": "db0eef9d-45b2-4dc0-94a8-fc283c01171f",
    "conductor_group": "",
    "description": "my sample node",
    "driver": "ipmi",
    "instance_uuid": None,
    "maintenance": False,
    "power_state": "power off",
    "provision_state": "available",
    "target_power_state": None,
    "target_provision_state": None,
    "traits": ["CUSTOM_TRAIT1", "HW_CPU_X86_VMX"],
}


def _ironic(
    sample_id: str,
    event_type: str,
    payload_name: str,
    version: str,
    data: Dict[str, Any],
    node_name: Optional[str],
    resource_id: str,
    publisher_id: str = "ironic-api.hostname02",
    priority: str = "info",
) -> Sample:
    return Sample(
        sample_id,
        notification(
            event_type,
            publisher_id,
            _versioned("ironic", payload_name, version, data),
            priority,
        ),
        "baremetal",
        node_name,
        resource_id,
    )


def _ironic_node(
    sample_id: str,
    event_type: str,
    payload_name: str,
    publisher_id: str,
    name: Optional[str] = None,
    version: str = "1.15",
    **data: Any,
) -> Sample:
    return _ironic(
        sample_id,
        event_type,
        payload_name,
        version,
        {**NODE_DATA, "name": name, **data},
        name,
        NODE_UUID,
        publisher_id,
        "error" if event_type.endswith(".error") else "info",
    )


IRONIC_SAMPLES: List[Sample] = [
    _ironic_node(
        "ironic:baremetal.node.update.end",
        "baremetal.node.update.end",
        "NodeCRUDPayload",
        "ironic-api.hostname02",
        version="1.13",
        provision_state="deploying",
        target_provision_state="active",
        driver_info={"ipmi_address": "192.168.0.111", "ipmi_username": "root"},
    ),
    _ironic_node(
        "ironic:baremetal.node.create.end (named)",
        "baremetal.node.create.end",
        "NodeCRUDPayload",
        "ironic-api.hostname02",
        name="node-1",
        version="1.13",
    ),
    _ironic_node(
        "ironic:baremetal.node.delete.error (named)",
        "baremetal.node.delete.error",
        "NodeCRUDPayload",
        "ironic-api.hostname02",
        name="node-1",
        version="1.13",
    ),
    _ironic_node(
        "ironic:baremetal.node.maintenance_set.start",
        "baremetal.node.maintenance_set.start",
        "NodePayload",
        "ironic-api.hostname02",
        maintenance=True,
        maintenance_reason="hw upgrade",
    ),
    _ironic_node(
        "ironic:baremetal.node.console_set.end",
        "baremetal.node.console_set.end",
        "NodePayload",
        "ironic-conductor.hostname01",
        console_enabled=True,
    ),
    _ironic_node(
        "ironic:baremetal.node.console_restore.error (named)",
        "baremetal.node.console_restore.error",
        "NodePayload",
        "ironic-conductor.hostname01",
        name="node-1",
        console_enabled=True,
    ),
    _ironic_node(
        "ironic:baremetal.node.power_set.start",
        "baremetal.node.power_set.start",
        "NodeSetPowerStatePayload",
        "ironic-conductor.hostname01",
        instance_uuid="d6ea00c1-1f94-4e95-90b3-3462d7031678",
        to_power="power on",
    ),
    _ironic_node(
        "ironic:baremetal.node.power_set.end (named)",
        "baremetal.node.power_set.end",
        "NodeSetPowerStatePayload",
        "ironic-conductor.hostname01",
        name="node-1",
        to_power="power on",
    ),
    _ironic_node(
        "ironic:baremetal.node.power_state_corrected.success",
        "baremetal.node.power_state_corrected.success",
        "NodeCorrectedPowerStatePayload",
        "ironic-conductor.cond-hostname02",
        instance_uuid="d6ea00c1-1f94-4e95-90b3-3462d7031678",
        from_power="power on",
    ),
    _ironic_node(
        "ironic:baremetal.node.provision_set.start",
        "baremetal.node.provision_set.start",
        "NodeSetProvisionStatePayload",
        "ironic-conductor.hostname01",
        version="1.16",
        provision_state="deploying",
        target_provision_state="active",
        previous_provision_state="available",
        previous_target_provision_state=None,
        event="deploy",
    ),
    _ironic_node(
        "ironic:baremetal.node.provision_set.success (named)",
        "baremetal.node.provision_set.success",
        "NodeSetProvisionStatePayload",
        "ironic-conductor.hostname01",
        name="node-1",
        version="1.16",
        provision_state="manageable",
        previous_provision_state="available",
        event="manage",
    ),
    _ironic(
        "ironic:baremetal.chassis.update.end",
        "baremetal.chassis.update.end",
        "ChassisCRUDPayload",
        "1.0",
        {
            "description": "bare 28",
            "extra": {},
            "uuid": "1910f669-ce8b-43c2-b1d8-cf3d65be815e",
        },
        None,
        "1910f669-ce8b-43c2-b1d8-cf3d65be815e",
    ),
    _ironic(
        "ironic:baremetal.deploy_template.update.end",
        "baremetal.deploy_template.update.end",
        "DeployTemplateCRUDPayload",
        "1.0",
        {
            "name": "CUSTOM_HYPERTHREADING_ON",
            "steps": [
                {
                    "interface": "bios",
                    "step": "apply_configuration",
                    "args": {"settings": [{"name": "LogicalProc", "value": "Enabled"}]},
                    "priority": 150,
                }
            ],
            "extra": {},
            "uuid": "1910f669-ce8b-43c2-b1d8-cf3d65be815e",
        },
        None,
        "1910f669-ce8b-43c2-b1d8-cf3d65be815e",
    ),
    _ironic(
        "ironic:baremetal.port.update.end",
        "baremetal.port.update.end",
        "PortCRUDPayload",
        "1.3",
        {
            "address": "77:66:23:34:11:b7",
            "node_uuid": "5b236cab-ad4e-4220-b57c-e827e858745a",
            "is_smartnic": True,
            "local_link_connection": {},
            "physical_network": "physnet1",
            "portgroup_uuid": "bd2f385e-c51c-4752-82d1-7a9ec2c25f24",
            "pxe_enabled": True,
            "uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
        },
        None,
        "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
    ),
    _ironic(
        "ironic:baremetal.portgroup.update.end",
        "baremetal.portgroup.update.end",
        "PortgroupCRUDPayload",
        "1.0",
        {
            "address": "11:44:32:87:61:e5",
            "node_uuid": "5b236cab-ad4e-4220-b57c-e827e858745a",
            "mode": "7",
            "name": "portgroup-node-18",
            "standalone_ports_supported": True,
            "uuid": "db033a40-bfed-4c84-815a-3db26bb268bb",
        },
        None,
        "db033a40-bfed-4c84-815a-3db26bb268bb",
    ),
    _ironic(
        "ironic:baremetal.volumeconnector.update.end",
        "baremetal.volumeconnector.update.end",
        "VolumeConnectorCRUDPayload",
        "1.0",
        {
            "connector_id": "iqn.2017-05.org.openstack:01:d9a51732c3f",
            "node_uuid": "4dbb4e69-99a8-4e13-b6e8-dd2ad4a20caf",
            "type": "iqn",
            "uuid": "19b9f3ab-4754-4725-a7a4-c43ea7e57360",
        },
        None,
        "19b9f3ab-4754-4725-a7a4-c43ea7e57360",
    ),
    _ironic(
        "ironic:baremetal.volumetarget.update.end",
        "baremetal.volumetarget.update.end",
        "VolumeTargetCRUDPayload",
        "1.0",
        {
            "boot_index": 0,
            "node_uuid": "4dbb4e69-99a8-4e13-b6e8-dd2ad4a20caf",
            "properties": {"target_lun": 1, "target_portal": "192.168.12.34:3260"},
            "uuid": "82a45833-9c58-4ec1-943c-2091ab10e47b",
            "volume_id": "f0d9b0e6-b242-9105-91d4-a20331693ad8",
            "volume_type": "iscsi",
        },
        None,
        "82a45833-9c58-4ec1-943c-2091ab10e47b",
    ),
    _ironic(
        "ironic:baremetal.allocation.create.end",
        "baremetal.allocation.create.end",
        "AllocationCRUDPayload",
        "1.1",
        {
            "candidate_nodes": [],
            "last_error": None,
            "name": "allocation-1",
            "node_uuid": NODE_UUID,
            "owner": None,
            "resource_class": "baremetal",
            "state": "active",
            "traits": [],
            "uuid": "3bf138ba-6d71-44e7-b6a1-ca9cac17103e",
        },
        None,
        "3bf138ba-6d71-44e7-b6a1-ca9cac17103e",
    ),
]


# --- neutron (legacy) ------------------------------------------------------

PORT_ID = "46d4bfb9-b26e-41f3-bd2e-e6dcc1ccedb2"
NETWORK_ID = "a87cc70a-3e15-4acf-8205-9b711a3531b7"
SUBNET_ID = "a0304c3a-4f08-4c43-88af-d796509c97d2"
ROUTER_ID = "5e3898d7-11be-483e-9732-b2f5eccd2b2e"
SECURITY_GROUP_ID = "f0ac4394-7e4a-4409-9701-ba8be283dbc3"
QOS_POLICY_ID = "29d5e02e-d5ab-4929-bee4-4a9fc12e22ae"
PROJECT_ID = "7e02058126cc4950b75f9970368ba177"

# port-bind-show-response.json: a router interface port bound to "devstack".
BOUND_PORT: Dict[str, Any] = {
    "id": PORT_ID,
    "name": "",
    "network_id": NETWORK_ID,
    "admin_state_up": True,
    "binding:host_id": "devstack",
    "binding:vif_type": "ovs",
    "binding:vnic_type": "normal",
    "device_id": ROUTER_ID,
    "device_owner": "network:router_interface",
    "fixed_ips": [{"ip_address": "10.0.0.1", "subnet_id": SUBNET_ID}],
    "mac_address": "fa:16:3e:23:fd:d7",
    "project_id": PROJECT_ID,
    "tenant_id": PROJECT_ID,
    "status": "ACTIVE",
}
# port-create-response.json: not bound yet (no binding extension fields).
NEW_PORT: Dict[str, Any] = {
    "id": "65c0ee9f-d634-4522-8954-51021b570b0d",
    "name": "private-port",
    "network_id": NETWORK_ID,
    "device_id": "",
    "device_owner": "",
    "fixed_ips": [{"ip_address": "10.0.0.2", "subnet_id": SUBNET_ID}],
    "mac_address": "fa:16:3e:c9:cb:f0",
    "project_id": "d6700c0c9ffa4f1cb322cd4a1f3906fa",
    "security_groups": [SECURITY_GROUP_ID],
    "status": "DOWN",
}


def _neutron(
    event_type: str,
    payload: Dict[str, Any],
    node_name: Optional[str],
    resource_id: Optional[str],
    variant: str = "",
) -> Sample:
    sample_id = f"neutron:{event_type}" + (f" ({variant})" if variant else "")
    return Sample(
        sample_id,
        notification(event_type, "network.controller-1", payload),
        "network",
        node_name,
        resource_id,
    )


NEUTRON_SAMPLES: List[Sample] = [
    _neutron(
        "port.create.start",
        {"port": {"network_id": NETWORK_ID, "name": "private-port"}},
        None,
        None,
    ),
    _neutron("port.create.end", {"port": NEW_PORT}, None, NEW_PORT["id"]),
    _neutron(
        "port.create.end",
        {"ports": [NEW_PORT, BOUND_PORT]},
        None,
        None,
        "bulk",
    ),
    _neutron(
        "port.update.start",
        {"port": {"binding:host_id": "devstack"}, "id": PORT_ID},
        "devstack",
        PORT_ID,
    ),
    _neutron("port.update.end", {"port": BOUND_PORT}, "devstack", PORT_ID),
    _neutron(
        "port.update.end",
        {"port": {**BOUND_PORT, "binding:host_id": ""}},
        None,
        PORT_ID,
        "unbound",
    ),
    _neutron("port.delete.start", {"port_id": PORT_ID}, None, PORT_ID),
    _neutron(
        "port.delete.end",
        {"port_id": PORT_ID, "port": BOUND_PORT},
        "devstack",
        PORT_ID,
    ),
    _neutron("port.delete.end", {"port_id": PORT_ID}, None, PORT_ID, "id only"),
    _neutron(
        "network.create.end",
        {
            "network": {
                "id": NETWORK_ID,
                "name": "net1",
                "admin_state_up": True,
                "provider:network_type": "vxlan",
                "project_id": PROJECT_ID,
                "subnets": [],
            }
        },
        None,
        NETWORK_ID,
    ),
    _neutron("network.delete.end", {"network_id": NETWORK_ID}, None, NETWORK_ID),
    _neutron(
        "subnet.create.end",
        {
            "subnet": {
                "id": SUBNET_ID,
                "name": "private-subnet",
                "network_id": NETWORK_ID,
                "cidr": "10.0.0.0/24",
                "ip_version": 4,
            }
        },
        None,
        SUBNET_ID,
    ),
    _neutron("subnet.delete.end", {"subnet_id": SUBNET_ID}, None, SUBNET_ID),
    _neutron(
        "router.create.end",
        {
            "router": {
                "id": ROUTER_ID,
                "name": "router1",
                "external_gateway_info": None,
                "project_id": PROJECT_ID,
            }
        },
        None,
        ROUTER_ID,
    ),
    _neutron(
        "router.interface.create",
        {
            "router_interface": {
                "id": ROUTER_ID,
                "port_id": PORT_ID,
                "subnet_id": SUBNET_ID,
                "subnet_ids": [SUBNET_ID],
                "tenant_id": PROJECT_ID,
            }
        },
        None,
        ROUTER_ID,
    ),
    _neutron(
        "floatingip.update.end",
        {
            "floatingip": {
                "id": "2f245a7b-796b-4f26-9cf9-9e82d248fda7",
                "floating_ip_address": "172.24.4.228",
                "floating_network_id": "376da547-b977-4cfe-9cba-275c80debf57",
                "port_id": PORT_ID,
                "router_id": ROUTER_ID,
                "status": "ACTIVE",
            }
        },
        None,
        "2f245a7b-796b-4f26-9cf9-9e82d248fda7",
    ),
    _neutron(
        "security_group.create.end",
        {
            "security_group": {
                "id": SECURITY_GROUP_ID,
                "name": "default",
                "security_group_rules": [],
            }
        },
        None,
        SECURITY_GROUP_ID,
    ),
    _neutron(
        "security_group_rule.delete.end",
        {"security_group_rule_id": "3c0e45ff-adaf-4124-b083-bf390e5482ff"},
        None,
        "3c0e45ff-adaf-4124-b083-bf390e5482ff",
    ),
    _neutron(
        "policy.create.end",
        {"policy": {"id": QOS_POLICY_ID, "name": "bw-limiter", "rules": []}},
        None,
        QOS_POLICY_ID,
    ),
]


# --- cinder (legacy) -------------------------------------------------------

CINDER_VOLUME_ID = "3b9d2e41-5c8f-4a8e-9b64-ff2e0c0a6b1d"
CINDER_HOST = "host1@lvmdriver-1#lvmdriver-1"


def _cinder(
    event_type: str,
    publisher_id: str,
    payload: Dict[str, Any],
    node_name: Optional[str],
    resource_id: Optional[str],
    priority: str = "INFO",
    variant: str = "",
) -> Sample:
    sample_id = f"cinder:{event_type}" + (f" ({variant})" if variant else "")
    return Sample(
        sample_id,
        notification(event_type, publisher_id, payload, priority),
        "volume",
        node_name,
        resource_id,
    )


# _usage_from_volume
VOLUME_USAGE: Dict[str, Any] = {
    "tenant_id": PROJECT_ID,
    "host": CINDER_HOST,
    "user_id": "fake",
    "availability_zone": "nova",
    "volume_id": CINDER_VOLUME_ID,
    "volume_type": "d4f9d2a3-3b1f-4d0e-8b0a-6c2c7e5a9f10",
    "display_name": "vol1",
    "status": "available",
    "snapshot_id": None,
    "size": 1,
    "replication_status": None,
    "metadata": {},
    "volume_attachment": [],
}

CINDER_SAMPLES: List[Sample] = [
    _cinder(
        "volume.create.start",
        "volume.host1@lvmdriver-1",
        {**VOLUME_USAGE, "host": None, "status": "creating"},
        None,
        CINDER_VOLUME_ID,
        variant="not scheduled yet",
    ),
    _cinder(
        "volume.create.end",
        "volume.host1@lvmdriver-1",
        VOLUME_USAGE,
        "host1",
        CINDER_VOLUME_ID,
    ),
    _cinder(
        "volume.attach.end",
        "volume.host1@lvmdriver-1",
        {**VOLUME_USAGE, "status": "in-use"},
        "host1",
        CINDER_VOLUME_ID,
    ),
    _cinder(
        "volume.delete.end",
        "volume.host1@lvmdriver-1",
        {**VOLUME_USAGE, "status": "deleting"},
        "host1",
        CINDER_VOLUME_ID,
    ),
    _cinder(
        "volume.resize.end",
        "volume.host1",
        {**VOLUME_USAGE, "host": "host1", "size": 2},
        "host1",
        CINDER_VOLUME_ID,
        variant="host without backend",
    ),
    _cinder(
        "snapshot.create.end",
        "snapshot.host1@lvmdriver-1",
        {
            "tenant_id": PROJECT_ID,
            "user_id": "fake",
            "availability_zone": "nova",
            "volume_id": CINDER_VOLUME_ID,
            "volume_size": 1,
            "snapshot_id": "8f3c5a0e-2b7d-4c61-9e2a-1d0b6f4e7a21",
            "display_name": "snap1",
            "status": "available",
            "deleted": "",
            "metadata": "",
        },
        None,
        "8f3c5a0e-2b7d-4c61-9e2a-1d0b6f4e7a21",
    ),
    _cinder(
        "backup.create.end",
        "backup.host2",
        {
            "tenant_id": PROJECT_ID,
            "user_id": "fake",
            "availability_zone": "nova",
            "backup_id": "c4e1f0a2-7d3b-4f5e-8a9c-0b1d2e3f4a5b",
            "host": "host2",
            "display_name": "backup1",
            "status": "available",
            "volume_id": CINDER_VOLUME_ID,
            "size": 1,
            "service": "cinder.backup.drivers.swift.SwiftBackupDriver",
            "fail_reason": None,
            "parent_id": None,
            "num_dependent_backups": 0,
            "snapshot_id": None,
        },
        "host2",
        "c4e1f0a2-7d3b-4f5e-8a9c-0b1d2e3f4a5b",
    ),
    _cinder(
        "group.create.end",
        "group.host1@lvmdriver-1",
        {
            "tenant_id": PROJECT_ID,
            "user_id": "fake",
            "availability_zone": "nova",
            "group_id": "0f6f1e3c-9c4d-4b8e-a2f7-5d6e7f8a9b0c",
            "group_type": "b5f8e9a1-2c3d-4e5f-8a7b-9c0d1e2f3a4b",
            "name": "group1",
            "status": "available",
        },
        None,
        "0f6f1e3c-9c4d-4b8e-a2f7-5d6e7f8a9b0c",
    ),
    _cinder(
        "group_snapshot.create.end",
        "group_snapshot.host1@lvmdriver-1",
        {
            "tenant_id": PROJECT_ID,
            "user_id": "fake",
            "group_snapshot_id": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
            "name": "group-snap1",
            "group_id": "0f6f1e3c-9c4d-4b8e-a2f7-5d6e7f8a9b0c",
            "status": "available",
        },
        None,
        "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
    ),
    _cinder(
        "consistencygroup.create.end",
        "consistencygroup.host1@lvmdriver-1",
        {
            "tenant_id": PROJECT_ID,
            "user_id": "fake",
            "availability_zone": "nova",
            "consistencygroup_id": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
            "name": "cg1",
            "status": "available",
        },
        None,
        "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    ),
    _cinder(
        "cgsnapshot.create.end",
        "cgsnapshot.host1@lvmdriver-1",
        {
            "tenant_id": PROJECT_ID,
            "user_id": "fake",
            "cgsnapshot_id": "9e0f1a2b-3c4d-4e5f-a6b7-c8d9e0f1a2b3",
            "name": "cgsnap1",
            "consistencygroup_id": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
            "status": "available",
        },
        None,
        "9e0f1a2b-3c4d-4e5f-a6b7-c8d9e0f1a2b3",
    ),
    _cinder(
        "scheduler.create_volume",
        "scheduler.host1",
        {
            "request_spec": {"volume_id": CINDER_VOLUME_ID},
            "volume_id": CINDER_VOLUME_ID,
            "state": "error",
            "method": "create_volume",
            "reason": "No valid backend was found.",
        },
        None,
        CINDER_VOLUME_ID,
        priority="ERROR",
    ),
]


# --- glance (legacy) -------------------------------------------------------

IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
IMAGE: Dict[str, Any] = {
    "id": IMAGE_ID,
    "name": "cirros-0.6.2-x86_64-disk",
    "status": "active",
    "owner": PROJECT_ID,
    "visibility": "public",
    "disk_format": "qcow2",
    "container_format": "bare",
    "size": 21430272,
    "checksum": "c8fc807773e5354afe61636071771906",
    "min_disk": 0,
    "min_ram": 0,
    "protected": False,
    "properties": {},
    "tags": [],
}


def _glance(
    event_type: str,
    payload: Any,
    resource_id: Optional[str],
    priority: str = "INFO",
    variant: str = "",
) -> Sample:
    sample_id = f"glance:{event_type}" + (f" ({variant})" if variant else "")
    return Sample(
        sample_id,
        notification(event_type, "image.localhost", payload, priority),
        "image",
        None,
        resource_id,
    )


TASK: Dict[str, Any] = {
    "task_id": "d3c3b2a1-0f9e-4d8c-b7a6-5f4e3d2c1b0a",
    "owner": PROJECT_ID,
    "task_type": "import",
    "status": "processing",
    "task_input": {"import_from": "http://example.com/cirros.img"},
    "result": None,
    "message": None,
}

GLANCE_SAMPLES: List[Sample] = [
    *[
        _glance(f"image.{action}", {**IMAGE, "status": status}, IMAGE_ID)
        for action, status in (
            ("create", "queued"),
            ("prepare", "queued"),
            ("upload", "saving"),
            ("activate", "active"),
            ("update", "active"),
            ("delete", "deleted"),
        )
    ],
    _glance(
        "image.send",
        {
            "image_id": IMAGE_ID,
            "owner_id": PROJECT_ID,
            "receiver_tenant_id": "6f70656e737461636b20342065766572",
            "receiver_user_id": "fake",
            "destination_ip": "10.0.2.15",
            "bytes_sent": 21430272,
        },
        IMAGE_ID,
    ),
    *[
        _glance(
            f"task.{phase}",
            {**TASK, "status": status, "result": result, "message": message},
            TASK["task_id"],
        )
        for phase, status, result, message in (
            ("run", "pending", None, None),
            ("processing", "processing", None, None),
            ("success", "success", {"image_id": IMAGE_ID}, None),
            ("failure", "failure", None, "Image import failed"),
        )
    ],
]


# --- keystone --------------------------------------------------------------

CADF_INITIATOR = {
    "typeURI": "service/security/account/user",
    "host": {"agent": "curl/7.22.0(x86_64-pc-linux-gnu)", "address": "127.0.0.1"},
    "id": "c9f76d3c31e142af9291de2935bde98a",
}
CADF_OBSERVER = {
    "typeURI": "service/security",
    "id": "openstack:3d4a50a9-2b59-438b-bf19-c231f9c7625a",
}


def _cadf(action: str, target_type: str, **extra: Any) -> Dict[str, Any]:
    return {
        "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
        "initiator": CADF_INITIATOR,
        "target": {
            "typeURI": target_type,
            "id": "openstack:1c2fc591-facb-4479-a327-520dade1ea15",
        },
        "observer": CADF_OBSERVER,
        "eventType": "activity",
        "eventTime": "2014-02-14T01:20:47.932842+00:00",
        "action": action,
        "outcome": "success",
        "id": "openstack:f5352d7b-bee6-4c22-8213-450e7b646e9f",
        **extra,
    }


def _keystone(
    event_type: str, payload: Dict[str, Any], resource_id: str, variant: str
) -> Sample:
    return Sample(
        f"keystone:{event_type} ({variant})",
        notification(event_type, "identity.host1234", payload),
        "identity",
        None,
        resource_id,
    )


KEYSTONE_SAMPLES: List[Sample] = [
    _keystone(
        "identity.user.created",
        {"resource_info": "671da331c47d4e29bb6ea1d270154ec3"},
        "671da331c47d4e29bb6ea1d270154ec3",
        "basic",
    ),
    _keystone(
        "identity.project.created",
        _cadf(
            "created.project",
            "data/security/project",
            resource_info="671da331c47d4e29bb6ea1d270154ec3",
        ),
        "671da331c47d4e29bb6ea1d270154ec3",
        "CADF",
    ),
    _keystone(
        "identity.authenticate",
        _cadf("authenticate", "service/security/account/user"),
        "openstack:1c2fc591-facb-4479-a327-520dade1ea15",
        "CADF",
    ),
    _keystone(
        "identity.role_assignment.created",
        _cadf(
            "created.role_assignment",
            "service/security/account/user",
            role="0e6b990380154a2599ce6b6e91548a68",
            project="24bdcff1aab8474895dbaac509793de1",
            inherited_to_projects=False,
            group="c1e22dc67cbd469ea0e33bf428fe597a",
        ),
        "openstack:1c2fc591-facb-4479-a327-520dade1ea15",
        "CADF",
    ),
]


# --- nova (legacy) ---------------------------------------------------------

LEGACY_INSTANCE: Dict[str, Any] = {
    "tenant_id": "6f70656e737461636b20342065766572",
    "user_id": "fake",
    "instance_id": INSTANCE_UUID,
    "display_name": "some-server",
    "hostname": "some-server",
    "reservation_id": "r-npxv0e40",
    "instance_type": "m1.small",
    "instance_flavor_id": "2",
    "host": "compute1",
    "node": "compute1",
    "availability_zone": "nova",
    "state": "active",
    "image_ref_url": "http://glance:9292/images/" + IMAGE_ID,
}


def _nova_legacy(
    event_type: str,
    publisher_id: str,
    payload: Dict[str, Any],
    node_name: Optional[str],
    resource_id: Optional[str],
    variant: str = "",
) -> Sample:
    sample_id = f"nova-legacy:{event_type}" + (f" ({variant})" if variant else "")
    return Sample(
        sample_id,
        notification(event_type, publisher_id, payload),
        "compute",
        node_name,
        resource_id,
    )


NOVA_LEGACY_SAMPLES: List[Sample] = [
    _nova_legacy(
        "compute.instance.create.start",
        "compute.compute1",
        {**LEGACY_INSTANCE, "state": "building"},
        "compute1",
        INSTANCE_UUID,
    ),
    _nova_legacy(
        "compute.instance.create.end",
        "compute.compute1",
        LEGACY_INSTANCE,
        "compute1",
        INSTANCE_UUID,
    ),
    _nova_legacy(
        "compute.instance.delete.end",
        "compute.api1",
        {**LEGACY_INSTANCE, "host": None, "node": None, "state": "deleted"},
        None,
        INSTANCE_UUID,
        "not scheduled",
    ),
    _nova_legacy(
        "compute.instance.update",
        "compute.compute1",
        {**LEGACY_INSTANCE, "old_state": "building", "state": "active"},
        "compute1",
        INSTANCE_UUID,
    ),
    _nova_legacy(
        "compute.instance.exists",
        "compute.compute1",
        {
            **LEGACY_INSTANCE,
            "audit_period_beginning": "2012-10-01T00:00:00.000000",
            "audit_period_ending": "2012-10-29T13:42:11.000000",
        },
        "compute1",
        INSTANCE_UUID,
    ),
    _nova_legacy(
        "compute.metrics.update",
        "compute.compute1",
        {
            "host": "compute1",
            "host_ip": "10.0.2.15",
            "nodename": "compute1",
            "metrics": [{"name": "cpu.frequency", "value": 800}],
        },
        "compute1",
        None,
    ),
    _nova_legacy(
        "keypair.create.end",
        "api.api1",
        {
            "tenant_id": "6f70656e737461636b20342065766572",
            "user_id": "fake",
            "key_name": "my-key",
        },
        None,
        "my-key",
    ),
    _nova_legacy(
        "scheduler.select_destinations.end",
        "scheduler.scheduler1",
        {"request_spec": {"num_instances": 1, "instance_type": {"name": "m1.small"}}},
        None,
        None,
    ),
]


# Glance's WARN and ERROR notifications carry a text, not an object. The
# API takes objects only, so this row is not in SAMPLES.
TEXT_PAYLOAD_SAMPLE = _glance(
    "image.upload",
    "Image storage media is full: There is not enough disk space",
    None,
    "ERROR",
    "error message",
)

SAMPLES: List[Sample] = [
    *NOVA_SAMPLES,
    *IRONIC_SAMPLES,
    *NEUTRON_SAMPLES,
    *CINDER_SAMPLES,
    *GLANCE_SAMPLES,
    *KEYSTONE_SAMPLES,
    *NOVA_LEGACY_SAMPLES,
]
