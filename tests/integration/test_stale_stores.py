"""A local store that no longer matches its table topic is wiped and replayed, never served
(see goka/_stale_stores.py): the topic recreated under a stopped processor or view, with fewer
records or as many; or keys deleted and their tombstones compacted away while it was gone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import goka
from goka import codec
from goka.errors import TopicError
from tests.conftest import RunningProcessor, unique
from tests.integration.test_compaction import AGGRESSIVE, read_topic
from tests.support.counting_member import count
from tests.support.serving import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TIMEOUT = 60.0


def recreate(brokers: str, topic: str, config: dict[str, str] | None = None) -> None:
    """Delete the one-partition table ``topic`` and create it again, empty."""
    manager = goka.TopicManager(brokers, table_config=config)
    manager.delete([topic])
    wait_until(lambda: manager.partitions(topic) is None, TIMEOUT, f"{topic} deleted")
    deadline = time.monotonic() + TIMEOUT
    while True:  # the broker may still be removing the old one
        try:
            manager.ensure_table(topic, 1)
            return
        except TopicError:
            assert time.monotonic() < deadline, f"{topic} could not be created again"
            time.sleep(0.5)


def view_rows(brokers: str, table: str, storage: goka.LMDBStorage) -> tuple[dict[str, int], int]:
    """The rows a view over ``storage`` holds once running, and the stores it wiped."""
    with goka.View(brokers, table, codec.Int64(), storage=storage) as view:
        assert view.wait_running(TIMEOUT)
        return dict(view.items()), view.wiped_stores


def test_stores_past_the_end_of_a_recreated_topic_are_wiped(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
) -> None:
    clicks = topic_factory("clicks", partitions=1)
    group = unique("recreated")
    table = goka.group_table(group)
    graph = goka.define_group(
        group, goka.input(clicks, codec.String(), count), goka.persist(codec.Int64())
    )
    store, view_store = goka.LMDBStorage(tmp_path / "p"), goka.LMDBStorage(tmp_path / "v")
    first = processor_factory(graph, storage=store)
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        for key in ("a", "a", "a", "b", "b"):
            emitter.emit_sync(key, "x")
    wait_until(lambda: view_rows(goka_brokers, table, view_store)[0] == {"a": 3, "b": 2},
               TIMEOUT, "the first counts")  # fmt: skip
    assert first.stop() is None

    recreate(goka_brokers, table)  # empty: the stores' offsets are past its end
    second = processor_factory(graph, storage=store)
    with goka.Emitter(goka_brokers, clicks, codec.String()) as emitter:
        emitter.emit_sync("a", "x")

    # ctx.value() saw the recreated table, not the old store: "a" counts from nothing
    def stored() -> int:
        return int(second.processor.stats()["partitions"].get(0, {}).get("messages_in", 0))

    wait_until(lambda: stored() == 1, TIMEOUT, "the new click processed")
    assert second.processor.stats()["wiped_stores"] == 1
    assert view_rows(goka_brokers, table, view_store) == ({"a": 1}, 1)
    assert second.stop() is None


@pytest.fixture
def table(goka_brokers: str) -> Iterator[str]:
    """A one-partition table topic of the test's own, deleted after it."""
    name = unique("table")
    yield name
    goka.TopicManager(goka_brokers).delete([name])


def test_a_view_store_of_a_topic_recreated_with_as_many_records_is_wiped(
    goka_brokers: str, table: str, tmp_path: Path
) -> None:
    goka.TopicManager(goka_brokers).ensure_table(table, 1)
    storage = goka.LMDBStorage(tmp_path)
    with goka.Emitter(goka_brokers, table, codec.Int64()) as emitter:
        for i in range(5):
            emitter.emit_sync(f"old-{i}", i)
    assert view_rows(goka_brokers, table, storage) == ({f"old-{i}": i for i in range(5)}, 0)

    recreate(goka_brokers, table)
    with goka.Emitter(goka_brokers, table, codec.Int64()) as emitter:
        for i in range(6):  # the old store's offset (5) is inside the new partition
            emitter.emit_sync(f"new-{i}", i)
    assert view_rows(goka_brokers, table, storage) == ({f"new-{i}": i for i in range(6)}, 1)
    # and a clean restart keeps the store: nothing changed under it
    assert view_rows(goka_brokers, table, storage) == ({f"new-{i}": i for i in range(6)}, 0)


@pytest.mark.kafka_only("Tansu does not compact topics")
def test_a_view_store_away_longer_than_delete_retention_is_wiped(
    goka_brokers: str, table: str, tmp_path: Path
) -> None:
    goka.TopicManager(goka_brokers, table_config={**AGGRESSIVE, "delete.retention.ms": "1000"})\
        .ensure_table(table, 1)  # fmt: skip
    storage = goka.LMDBStorage(tmp_path)
    with goka.Emitter(goka_brokers, table, codec.Int64()) as emitter:
        for i in range(5):
            emitter.emit_sync(f"key-{i}", i)
    assert view_rows(goka_brokers, table, storage)[0] == {f"key-{i}": i for i in range(5)}

    # while the view is away, key-0 is deleted and the cleaner removes its tombstone
    with goka.Emitter(goka_brokers, table, codec.Int64()) as emitter:
        emitter.emit_sync("key-0", None)
        deadline = time.monotonic() + 120
        while any(key == b"key-0" for _, _, key, _ in read_topic(goka_brokers, table, 1)):
            assert time.monotonic() < deadline, "the cleaner did not remove the tombstone"
            emitter.emit_sync("filler", 0)  # new segments for the cleaner to work on
            time.sleep(0.5)
    rows, wiped = view_rows(goka_brokers, table, storage)
    assert "key-0" not in rows and wiped == 1
    assert rows == {**{f"key-{i}": i for i in range(1, 5)}, "filler": 0}
