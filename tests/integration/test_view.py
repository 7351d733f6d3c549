"""Views against the real broker, over tables written directly to compacted topics.

Tables are built with an Emitter (codec Int64, default murmur2 partitioner) on a topic
created with ``TopicManager.ensure_table``: the same bytes and partitions a processor's
changelog has.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import goka
from goka import codec
from goka.errors import ConfigError, GokaError, TopicError
from goka.partitioner import murmur2
from goka.storage import Storage, StorageFactory
from tests.conftest import unique

pytestmark = pytest.mark.broker

PARTITIONS = 4
TIMEOUT = 30.0  # bound of every wait below; only reached when something is wrong

# 60 "user-" keys, 12 "admin-" keys and a few others (non-ASCII, short) in every partition
SHARED_ROWS: dict[str, int] = {f"user-{i:02d}": i for i in range(60)}
SHARED_ROWS |= {f"admin-{i}": 1000 + i for i in range(12)}
SHARED_ROWS |= {"a": -1, "b": 2**62, "zé": 7, "ä": 8, "user-": 9}
SHARED_DELETED = ["user-05", "admin-3", "b"]  # written, then tombstoned


def write(emitter: goka.Emitter[int], rows: Iterable[tuple[str, int | None]]) -> int:
    """Write ``rows`` (None: a tombstone) in order; returns the number of records."""
    futures = [(key, emitter.emit(key, value)) for key, value in rows]
    for key, future in futures:
        assert future.result(TIMEOUT).partition == murmur2(key.encode(), PARTITIONS)
    return len(futures)


def write_table(brokers: str, table: str, rows: Iterable[tuple[str, int | None]]) -> int:
    with goka.Emitter(brokers, table, codec.Int64()) as emitter:
        return write(emitter, rows)


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def table_factory(goka_brokers: str) -> Iterator[Callable[..., str]]:
    """Creates uniquely named compacted table topics; deletes them after the test."""
    manager = goka.TopicManager(goka_brokers)
    created: list[str] = []

    def create(prefix: str = "table", partitions: int = PARTITIONS) -> str:
        name = unique(prefix)
        manager.ensure_table(name, partitions)
        created.append(name)
        return name

    yield create
    manager.delete(created)


@pytest.fixture(scope="module")
def shared_table(goka_brokers: str) -> Iterator[str]:
    """A table holding SHARED_ROWS (and tombstones for SHARED_DELETED), read-only."""
    manager = goka.TopicManager(goka_brokers)
    name = unique("shared-table")
    manager.ensure_table(name, PARTITIONS)
    rows = [*SHARED_ROWS.items(), *((key, None) for key in SHARED_DELETED)]
    write_table(goka_brokers, name, rows)
    yield name
    manager.delete([name])


@pytest.fixture(scope="module")
def shared_view(goka_brokers: str, shared_table: str) -> Iterator[goka.View[int]]:
    with goka.View(goka_brokers, shared_table, codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        yield view


def expected_rows() -> dict[str, int]:
    return {k: v for k, v in SHARED_ROWS.items() if k not in SHARED_DELETED}


class GatedStorage:
    """Wraps a storage factory; every store's apply() waits until ``gate`` is set."""

    def __init__(self, inner: StorageFactory) -> None:
        self.inner = inner
        self.gate = threading.Event()

    def open(self, table: str, partition: int) -> Storage:
        return GatedStore(self.inner.open(table, partition), self.gate)  # type: ignore[return-value]


class GatedStore:
    def __init__(self, inner: Storage, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate

    def apply(self, writes: Mapping[bytes, bytes | None], next_offset: int) -> None:
        assert self.gate.wait(TIMEOUT), "the test never opened the gate"
        self.inner.apply(writes, next_offset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["memory", "lmdb"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    if request.param == "memory":
        return goka.MemoryStorage()
    return goka.LMDBStorage(tmp_path)


def test_recovers_follows_and_resumes(
    goka_brokers: str,
    table_factory: Callable[..., str],
    storage: StorageFactory,
) -> None:
    table = table_factory()
    emitter = goka.Emitter(goka_brokers, table, codec.Int64())
    rows = [(f"key-{i}", i * 10) for i in range(40)]
    written = write(emitter, [*rows, ("key-1", None), ("key-2", None), ("key-3", 33)])
    expected = dict(rows) | {"key-3": 33}
    del expected["key-1"], expected["key-2"]

    gated = GatedStorage(storage)
    view = goka.View(goka_brokers, table, codec.Int64(), storage=gated)
    try:
        assert view.state == "idle"
        assert view.partitions == (0, 1, 2, 3)
        assert view.partition_count == PARTITIONS
        view.start()
        wait_until(lambda: view.state != "idle")
        assert view.state == "recovering"  # held there: no store can apply anything yet
        assert not view.wait_running(0.05)
        gated.gate.set()
        assert view.wait_running(TIMEOUT)
        assert view.state == "running"
        assert view.error is None
        assert view.recovered_records == written

        assert view.get("key-0") == 0
        assert view.get("key-39") == 390
        assert view.get("key-3") == 33
        assert view.get("key-1") is None  # tombstoned
        assert view.get("key-2") is None
        assert view.get("never-written") is None
        assert dict(view.items()) == expected
        assert [k for k, _ in view.items()] == sorted(expected)

        # updates written while running are followed
        write(emitter, [("key-0", 1), ("key-4", None), ("new", 5)])
        wait_until(lambda: view.get("new") == 5)
        wait_until(lambda: view.get("key-4") is None and view.get("key-0") == 1)
        wait_until(lambda: view.recovered_records == written + 3)
        expected |= {"key-0": 1, "new": 5}
        del expected["key-4"]
        assert dict(view.items()) == expected
    finally:
        emitter.close()
        gated.gate.set()
        view.stop()
    assert view.state == "stopped"
    view.stop()
    assert view.state == "stopped"

    # the stores keep their rows and offsets: a new view over them has nothing to replay
    with goka.View(goka_brokers, table, codec.Int64(), storage=storage) as again:
        assert again.wait_running(TIMEOUT)
        assert again.recovered_records == 0
        assert dict(again.items()) == expected


def test_lmdb_storage_keeps_one_directory_per_partition(
    goka_brokers: str, table_factory: Callable[..., str], tmp_path: Path
) -> None:
    table = table_factory()
    write_table(goka_brokers, table, [(f"k{i}", i) for i in range(20)])
    with goka.View(goka_brokers, table, codec.Int64(), storage=goka.LMDBStorage(tmp_path)) as v:
        assert v.wait_running(TIMEOUT)
        assert dict(v.items()) == {f"k{i}": i for i in range(20)}
    assert sorted(p.name for p in (tmp_path / table).iterdir()) == ["0", "1", "2", "3"]
    assert all(any(p.iterdir()) for p in (tmp_path / table).iterdir())  # and stay after stop


def test_items_are_in_global_key_order(shared_view: goka.View[int]) -> None:
    expected = expected_rows()
    # the rows are spread over every partition, so this order is a merge across partitions
    assert {shared_view.partition_of(k) for k in expected} == set(range(PARTITIONS))
    assert list(shared_view.items()) == sorted(expected.items())
    assert [shared_view.get(k) for k in expected] == list(expected.values())
    assert all(shared_view.get(k) is None for k in SHARED_DELETED)
    assert shared_view.recovered_records == len(SHARED_ROWS) + len(SHARED_DELETED)


RANGES: list[tuple[dict[str, str], Callable[[str], bool]]] = [
    ({"prefix": "user-"}, lambda k: k.startswith("user-")),
    ({"prefix": "user-1"}, lambda k: k.startswith("user-1")),
    ({"prefix": "admin-1"}, lambda k: k.startswith("admin-1")),
    ({"prefix": "nobody"}, lambda k: False),
    ({"prefix": ""}, lambda k: True),
    ({"prefix": "ä"}, lambda k: k == "ä"),
    ({"start": "user-50"}, lambda k: k >= "user-50"),
    ({"end": "b"}, lambda k: k < "b"),
    ({"start": "admin-2", "end": "user-10"}, lambda k: "admin-2" <= k < "user-10"),
    ({"start": "user-10", "end": "user-10"}, lambda k: False),
    ({"start": "user-20", "end": "user-10"}, lambda k: False),
    ({"prefix": "user-", "start": "user-55"}, lambda k: k.startswith("user-") and k >= "user-55"),
    ({"prefix": "user-", "start": "a"}, lambda k: k.startswith("user-")),
    ({"prefix": "user-", "end": "user-03"}, lambda k: k.startswith("user-") and k < "user-03"),
    ({"prefix": "user-", "end": "zz"}, lambda k: k.startswith("user-")),
    (
        {"prefix": "user-", "start": "user-1", "end": "user-3"},
        lambda k: k.startswith("user-") and "user-1" <= k < "user-3",
    ),
    ({"prefix": "admin-", "start": "user-"}, lambda k: False),
]


@pytest.mark.parametrize(("bounds", "keep"), RANGES, ids=[str(b) for b, _ in RANGES])
def test_items_with_prefix_start_and_end(
    shared_view: goka.View[int], bounds: dict[str, str], keep: Callable[[str], bool]
) -> None:
    expected = sorted((k, v) for k, v in expected_rows().items() if keep(k))
    assert list(shared_view.items(**bounds)) == expected


def test_partition_subset(goka_brokers: str, shared_table: str) -> None:
    rows = expected_rows()
    held = {k: v for k, v in rows.items() if murmur2(k.encode(), PARTITIONS) in (0, 2)}
    other = next(k for k in rows if murmur2(k.encode(), PARTITIONS) == 1)
    with goka.View(goka_brokers, shared_table, codec.Int64(), partitions=[2, 0, 2]) as view:
        assert view.partitions == (0, 2)
        assert view.wait_running(TIMEOUT)
        assert list(view.items()) == sorted(held.items())
        expected_users = sorted((k, v) for k, v in held.items() if k.startswith("user-"))
        assert list(view.items(prefix="user-")) == expected_users
        assert all(view.get(k) == v for k, v in held.items())
        with pytest.raises(ConfigError, match=rf"{other!r} is in partition 1 of table") as info:
            view.get(other)
        assert "does not hold (it holds [0, 2])" in str(info.value)
        records_held = view.recovered_records
    assert 0 < records_held < len(SHARED_ROWS) + len(SHARED_DELETED)


@pytest.mark.parametrize("partitions", [[4], [-1], [0, 7], [0, "1"]], ids=str)
def test_invalid_partitions(goka_brokers: str, shared_table: str, partitions: list[Any]) -> None:
    with pytest.raises(ConfigError, match=rf"not partitions of table {shared_table!r}.*0\.\.3"):
        goka.View(goka_brokers, shared_table, codec.Int64(), partitions=partitions)


def test_partitions_change_while_running(goka_brokers: str, shared_table: str) -> None:
    rows = expected_rows()

    def rows_of(*partitions: int) -> list[tuple[str, int]]:
        return sorted(
            (k, v) for k, v in rows.items() if murmur2(k.encode(), PARTITIONS) in partitions
        )

    with goka.View(goka_brokers, shared_table, codec.Int64(), partitions=[]) as view:
        assert view.wait_running(TIMEOUT)  # holding nothing is running at once
        assert view.partitions == ()
        view.set_partitions([1, 3])
        wait_until(lambda: view.held().keys() == {1, 3})
        wait_until(lambda: all(h.state == "running" for h in view.held().values()))
        assert list(view.items()) == rows_of(1, 3)
        view.set_partitions([3, 0])
        wait_until(lambda: view.partitions == (0, 3))
        wait_until(lambda: view.held()[0].state == "running")
        assert list(view.items()) == rows_of(0, 3)
        with pytest.raises(ConfigError, match="not partitions of table"):
            view.set_partitions([9])


def test_empty_table_reaches_running(goka_brokers: str, table_factory: Callable[..., str]) -> None:
    table = table_factory("empty-table", partitions=3)
    with goka.View(goka_brokers, table, codec.Int64()) as view:
        assert view.wait_running(TIMEOUT)
        assert view.state == "running"
        assert view.recovered_records == 0
        assert list(view.items()) == []
        assert view.get("anything") is None


def test_missing_table(goka_brokers: str) -> None:
    table = unique("no-such-table")
    with pytest.raises(TopicError, match=rf"{table!r} does not exist: start a processor"):
        goka.View(goka_brokers, table, codec.Int64())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"codec": codec.Int64},
            r"codec: .* is not a codec; pass an instance such as goka\.codec\.String\(\)",
        ),
        ({"codec": "int64"}, r"not a codec"),
        ({"poll_timeout": 0}, "poll_timeout must be positive"),
        ({"partitioner": "crc32"}, "unknown partitioner 'crc32'"),
    ],
)
def test_bad_arguments(
    goka_brokers: str, shared_table: str, options: dict[str, Any], match: str
) -> None:
    arguments: dict[str, Any] = {"codec": codec.Int64()} | options
    with pytest.raises(ConfigError, match=match):
        goka.View(goka_brokers, shared_table, **arguments)


def test_stop_is_idempotent_and_removes_temporary_storage(
    goka_brokers: str, shared_table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    view = goka.View(goka_brokers, shared_table, codec.Int64())
    [temp] = list(tmp_path.iterdir())
    assert temp.name.startswith(f"goka-view-{shared_table}-")
    view.start()
    assert view.wait_running(TIMEOUT)
    assert sorted(p.name for p in (temp / shared_table).iterdir()) == ["0", "1", "2", "3"]
    view.stop()
    assert view.state == "stopped"
    assert not temp.exists()
    with pytest.raises(GokaError, match="is stopped"):
        view.get("user-01")
    with pytest.raises(GokaError, match="is stopped"):
        list(view.items())
    view.stop()
    assert view.state == "stopped"
    assert list(tmp_path.iterdir()) == []

    never_started = goka.View(goka_brokers, shared_table, codec.Int64())
    assert len(list(tmp_path.iterdir())) == 1
    never_started.stop()
    never_started.stop()
    assert list(tmp_path.iterdir()) == []
