"""Attributes of the seed's ``EventBridge`` that live on one of its parts.

The seed's tests read and set names such as ``bridge._redis_client`` and
``bridge._subscriber_thread``; the bridge keeps them where their job is (the
link, the subscriber) and passes reads and writes through.
"""

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Part(Generic[T]):
    """An attribute of the bridge that lives on one of its parts: reading and
    setting it on the bridge reads and sets ``<part>.<name>``."""

    def __init__(self, part: str, name: str) -> None:
        self.part = part
        self.name = name

    def __get__(self, bridge: Any, owner: Any = None) -> T:
        value: T = getattr(getattr(bridge, self.part), self.name)
        return value

    def __set__(self, bridge: Any, value: T) -> None:
        setattr(getattr(bridge, self.part), self.name, value)

    def __delete__(self, bridge: Any) -> None:
        """Nothing: ``mock.patch.object`` deletes what it patched on an
        instance when it ends, and the part keeps the patched value (a test's
        bridge is its own)."""
