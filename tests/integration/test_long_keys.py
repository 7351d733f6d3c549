"""Keys LMDB cannot hold as they are (the empty key, keys over 511 bytes) on the real broker:
Kafka allows them and Goka (LevelDB) stores them, so a processor counts them, its table
topic holds them, and a view recovers, serves and scans them, all from LMDB on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import goka
from goka import codec
from tests.conftest import RunningProcessor, unique
from tests.support.counting_member import count
from tests.support.tables import emit_all, wait_for_rows

pytestmark = pytest.mark.broker

KEYS = ["", "short", "a" * 600, "a" * 511 + "b", "k" * 5000]


def test_the_empty_key_and_keys_over_lmdbs_limit_are_counted_kept_and_recovered(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
) -> None:
    topic = topic_factory("long-keys", partitions=3)
    group = unique("long-keys")

    graph = goka.define_group(
        group, goka.input(topic, codec.String(), count), goka.persist(codec.Int64())
    )
    runner = processor_factory(graph, storage=goka.LMDBStorage(tmp_path / "processor"))
    emit_all(goka_brokers, topic, codec.String(), [(key, "click") for key in KEYS * 2])
    table = goka.group_table(group)
    expected = dict.fromkeys(KEYS, 2)
    assert wait_for_rows(goka_brokers, table, codec.Int64(), expected) == expected

    # the processor goes on (its stores took the writes), and a fresh LMDB copy recovers all
    emit_all(goka_brokers, topic, codec.String(), [("k" * 5000, "click"), ("", "click")])
    expected.update({"k" * 5000: 3, "": 3})
    assert wait_for_rows(goka_brokers, table, codec.Int64(), expected) == expected
    with goka.View(
        goka_brokers, table, codec.Int64(), storage=goka.LMDBStorage(tmp_path / "view")
    ) as view:
        assert view.wait_running(60)
        assert {key: view.get(key) for key in KEYS} == expected
        assert [key for key, _ in view.items()] == sorted(KEYS, key=str.encode)
    assert runner.stop() is None
