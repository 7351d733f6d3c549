"""The public API is exactly the names in each package's ``__all__`` (as httpx checks its own).

"Sorted" means the order ruff's RUF022 keeps: SCREAMING_CASE constants, then CamelCase
classes, then everything else, each group sorted (so ``JSON`` comes before ``Bytes``).
"""

from __future__ import annotations

from types import ModuleType

import pytest

import discovery
import goka
import goka.codec
import goka.storage
import goka.tester
import viewsvc

EXPECTED: dict[str, list[str]] = {
    "goka": [
        "Context",
        "Delivery",
        "Emitter",
        "GokaError",
        "Group",
        "GroupGraph",
        "LMDBStorage",
        "MemoryStorage",
        "Processor",
        "Stream",
        "Table",
        "TopicManager",
        "View",
        "codec",
        "dead_letter",
        "define_group",
        "group_table",
        "input",
        "join",
        "lookup",
        "loop",
        "loop_topic",
        "output",
        "persist",
        "visitor",
    ],
    "goka.storage": ["LMDBStorage", "MemoryStorage", "Storage", "StorageFactory"],
    "goka.codec": ["JSON", "Bytes", "Codec", "Int64", "Protobuf", "String"],
    "goka.tester": [
        "OutputTracker",
        "TableHandle",
        "Tester",
        "TesterProcessor",
        "TesterView",
        "TrackedMessage",
    ],
    "discovery": [
        "DEFAULT_TOPIC",
        "Announcer",
        "DiscoveryConfig",
        "Location",
        "MemberInfo",
        "Membership",
        "Owner",
        "PartitionInfo",
        "TableInfo",
        "placement",
        "standbys",
    ],
    "viewsvc": ["Client"],
}

MODULES: dict[str, ModuleType] = {
    "goka": goka,
    "goka.storage": goka.storage,
    "goka.codec": goka.codec,
    "goka.tester": goka.tester,
    "discovery": discovery,
    "viewsvc": viewsvc,
}


def isort_key(name: str) -> tuple[int, str]:
    if len(name) > 1 and name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("module_name", list(EXPECTED))
def test_all_is_sorted(module_name: str) -> None:
    exported = MODULES[module_name].__all__
    assert exported == sorted(exported, key=isort_key)
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("module_name", list(EXPECTED))
def test_all_is_exactly_the_public_api(module_name: str) -> None:
    assert MODULES[module_name].__all__ == EXPECTED[module_name]


@pytest.mark.parametrize("module_name", list(EXPECTED))
def test_every_exported_name_resolves(module_name: str) -> None:
    module = MODULES[module_name]
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # noqa: S102 - the star import users write
    assert set(namespace) - {"__builtins__"} == set(module.__all__)


def test_exported_objects_are_the_defining_ones() -> None:
    assert isinstance(goka.codec, ModuleType)  # the submodule, not a shadowing attribute
    assert goka.LMDBStorage is goka.storage.LMDBStorage
    assert goka.MemoryStorage is goka.storage.MemoryStorage
    assert issubclass(goka.GokaError, Exception)
    assert goka.Delivery(1, 2) == (1, 2)
