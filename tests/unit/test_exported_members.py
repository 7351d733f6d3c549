"""The public API is exactly the names in each package's ``__all__`` (as httpx checks its own).

"Sorted" means the order ruff's RUF022 keeps: SCREAMING_CASE constants, then CamelCase
classes, then everything else, each group sorted (so ``JSON`` comes before ``Bytes``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import pytest

import discovery
import goka
import goka.codec
import goka.errors
import goka.storage
import goka.tester
import viewsvc
import viewsvc.client

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
        "__version__",
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
    "goka.storage": ["LMDBStorage", "MemoryStorage", "Storage", "StorageFactory", "StoreOrigin"],
    "goka.errors": [
        "BrokerError",
        "CallbackFailed",
        "CodecError",
        "ConfigError",
        "DeliveryError",
        "DevBrokerError",
        "EmitterClosedError",
        "ExpectationError",
        "GokaError",
        "HistoryUnavailable",
        "LocalKafkaError",
        "MissingTool",
        "PartitionNotHeld",
        "ProcessorError",
        "ReadError",
        "StorageError",
        "TopicError",
        "UnknownTable",
        "VisitAborted",
    ],
    "goka.codec": ["JSON", "Bytes", "Codec", "Int64", "Protobuf", "String", "check_codec"],
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
        "__version__",
        "placement",
        "standbys",
    ],
    "viewsvc": [
        "Change",
        "Client",
        "Consistency",
        "Entry",
        "GetResult",
        "Limits",
        "NodeConfig",
        "ReadError",
        "Router",
        "ServeConfig",
        "ServedTable",
        "ServerSecurity",
        "Source",
        "ViewServer",
        "WatchIterator",
        "__version__",
    ],
    "viewsvc.client": [
        "Change",
        "Client",
        "Consistency",
        "Entry",
        "GetResult",
        "ReadError",
        "ScanIterator",
        "ServedTable",
        "Source",
        "WatchIterator",
    ],
}

MODULES: dict[str, ModuleType] = {
    "goka": goka,
    "goka.storage": goka.storage,
    "goka.errors": goka.errors,
    "goka.codec": goka.codec,
    "goka.tester": goka.tester,
    "discovery": discovery,
    "viewsvc": viewsvc,
    "viewsvc.client": viewsvc.client,
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


def test_every_error_class_is_defined_in_goka_errors() -> None:
    """One place for the errors users catch, whichever package raises them."""
    import discovery.routing
    import goka.local_table
    import goka.localkafka._java

    modules = [goka, goka.local_table, goka.localkafka._java, discovery, discovery.routing]
    for module in [*modules, viewsvc, viewsvc.client]:
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, goka.GokaError):
                assert value.__module__ == "goka.errors", f"{module.__name__}.{name}"
    assert viewsvc.client.ReadError is goka.errors.ReadError


@pytest.mark.parametrize("module_name", list(EXPECTED))
def test_every_public_name_defined_or_imported_is_exported(module_name: str) -> None:
    """What ``vars()`` holds, not only ``__all__``: a public name cannot be added to a
    package without being exported (or made private), nor an exported one go missing. In a
    module (not a package) the names it imports for itself are not its API."""
    module = MODULES[module_name]
    is_package = hasattr(module, "__path__")
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name != "annotations"  # from __future__ import annotations
        and not isinstance(value, TypeVar)
        and not (isinstance(value, ModuleType) and name not in module.__all__)
        and (is_package or getattr(value, "__module__", None) == module_name)
    }
    assert public == {name for name in module.__all__ if not name.startswith("_")}


def test_every_package_has_the_distribution_version() -> None:
    with (Path(__file__).parents[2] / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "goka.__version__"}
    assert discovery.__version__ is goka.__version__
    assert viewsvc.__version__ is goka.__version__
    assert goka.__version__.count(".") == 2
