"""The listener's settings given as text, read: LISTENER_EXCHANGES
(``ironic,nova,cinder=openstack``) and LISTENER_TOPICS
(``nova=versioned_notifications;neutron=notifications``)."""

import re
from typing import Any, Dict, Iterable, List

# The OpenStack services whose versioned notifications the listener carries
# by default; each publishes on an exchange of its own name unless
# LISTENER_EXCHANGES says otherwise ("cinder=openstack").
LISTENER_EXCHANGES = ["ironic", "nova", "neutron", "cinder", "keystone", "glance"]

# What a service, an exchange and a topic may be called: the characters of
# an AMQP 0-9-1 exchange name. A topic with "*" or "#" would be a wildcard
# binding and catch more than the service publishes, so it is refused.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]+")


def default_topic(service: str) -> str:
    """The topic a service's notifications are consumed from unless
    LISTENER_TOPICS names another one."""
    return f"{service}_versioned_notifications"


def _checked_name(kind: str, name: str, entry: str) -> str:
    if not name:
        raise ValueError(f"{entry!r} has an empty {kind}")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{kind} {name!r} in {entry!r} is not a name (letters, digits and "
            "'_.:-' only)"
        )
    return name


def _entries(value: Any, separator: str) -> Iterable[str]:
    """The entries of a setting given as a string (split on ``separator``)
    or already as a list; empty ones are left out."""
    items = value.split(separator) if isinstance(value, str) else value
    return (item.strip() for item in items if item.strip())


def parse_listener_exchanges(value: Any) -> Dict[str, str]:
    """Service -> exchange from LISTENER_EXCHANGES.

    Entries separated by commas, each a service whose exchange has its name
    (``nova``) or ``<service>=<exchange>`` (``cinder=openstack``). A service
    named twice with the same exchange counts once.
    """
    if isinstance(value, dict):
        value = [f"{service}={exchange}" for service, exchange in value.items()]
    exchanges: Dict[str, str] = {}
    for entry in _entries(value, ","):
        service, _, exchange = (part.strip() for part in entry.partition("="))
        exchange = exchange if "=" in entry else service
        _checked_name("service", service, entry)
        _checked_name("exchange", exchange, entry)
        if exchanges.setdefault(service, exchange) != exchange:
            raise ValueError(
                f"{service} is given two exchanges, {exchanges[service]} and "
                f"{exchange}"
            )
    if not exchanges:
        raise ValueError("names no service")
    return exchanges


def parse_listener_topics(value: Any) -> Dict[str, List[str]]:
    """Service -> topics from LISTENER_TOPICS.

    Entries separated by ';', each ``<service>=<topic>[,<topic>...]``
    (``nova=versioned_notifications;neutron=notifications``).
    """
    if isinstance(value, dict):
        value = [f"{service}={','.join(topics)}" for service, topics in value.items()]
    topics: Dict[str, List[str]] = {}
    for entry in _entries(value, ";"):
        service, equals, names = (part.strip() for part in entry.partition("="))
        if not equals:
            raise ValueError(
                f"{entry!r} is not <service>=<topic>[,<topic>...] (entries are "
                "separated by ';')"
            )
        _checked_name("service", service, entry)
        if service in topics:
            raise ValueError(f"{service} is named twice")
        entry_topics = [name.strip() for name in names.split(",")]
        for topic in entry_topics:
            _checked_name("topic", topic, entry)
        topics[service] = list(dict.fromkeys(entry_topics))
    return topics
