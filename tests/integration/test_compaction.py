"""Tables on a compacted topic that Kafka's log cleaner has really compacted: offset gaps,
overwritten values and tombstones gone. A processor and a view recovering from it hold
exactly the live rows.

Kafka only: the dev broker (Tansu) never compacts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

import goka
from goka import codec
from tests.conftest import RunningProcessor, unique

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("Tansu does not compact topics"),
]

PARTITIONS = 2
LIVE_KEYS = [f"live-{i}" for i in range(20)]
DELETED_KEYS = [f"gone-{i}" for i in range(10)]
# compact as soon as possible: a new segment every 100 ms, any dirt is worth a cleaning,
# tombstones are removed on the next cleaning
AGGRESSIVE = {
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.001",
    "delete.retention.ms": "0",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "100",
}
TIMEOUT = 120.0


def on_update(ctx: goka.Context, command: str) -> None:
    if command == "delete":
        ctx.delete()
    else:
        ctx.set_value(command)


def read_topic(
    brokers: str, topic: str, partitions: int = PARTITIONS
) -> list[tuple[int, int, bytes, bytes | None]]:
    """Every record of ``topic`` as (partition, offset, key, value), read to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": unique("raw"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        ends = {}
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records = []
        deadline = time.monotonic() + 30
        while ends:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            records.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
        return records
    finally:
        consumer.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def table_rows(processor: goka.Processor) -> dict[str, str]:
    table = processor.local_table()
    return {
        key.decode(): value.decode()
        for partition in table.held()
        for key, value in table.items(partition, None, None)
    }


def test_recovery_from_a_compacted_table_topic(
    goka_brokers: str,
    topic_factory: Callable[..., str],
    processor_factory: Callable[..., RunningProcessor],
    tmp_path: Path,
) -> None:
    topic = topic_factory("updates", partitions=PARTITIONS)
    group = unique("compacted")
    table = goka.group_table(group)
    graph = goka.define_group(
        group, goka.input(topic, codec.String(), on_update), goka.persist(codec.String())
    )
    first = processor_factory(graph, table_config=AGGRESSIVE, batch_size=50)
    reference: dict[str, str] = {}
    produced = 0

    def emit_round(round_number: int, emitter: goka.Emitter[str]) -> None:
        nonlocal produced
        for key in LIVE_KEYS:
            value = f"{key}@{round_number}"
            emitter.emit_sync(key, value)
            reference[key] = value
            produced += 1
        wait_until(lambda: table_rows(first.processor) == reference, f"round {round_number}")

    with goka.Emitter(goka_brokers, topic, codec.String()) as emitter:
        for key in DELETED_KEYS:
            emitter.emit_sync(key, "doomed")
            reference[key] = "doomed"
            produced += 1
        emit_round(0, emitter)
        for key in DELETED_KEYS:
            emitter.emit_sync(key, "delete")
            del reference[key]
            produced += 1
        # overwrite the live keys until the cleaner has visibly compacted the table topic:
        # no record of a deleted key left (value and tombstone gone) and offsets with gaps
        deadline = time.monotonic() + TIMEOUT
        round_number = 1
        while True:
            emit_round(round_number, emitter)
            records = read_topic(goka_brokers, table)
            keys = {key.decode() for _, _, key, _ in records}
            if not keys & set(DELETED_KEYS) and len(records) < produced // 2:
                break
            assert time.monotonic() < deadline, (
                f"{table} not compacted after {round_number} rounds: {len(records)} records, "
                f"deleted keys still there: {sorted(keys & set(DELETED_KEYS))}"
            )
            round_number += 1
    assert first.stop() is None

    offsets = {p: [o for q, o, _, _ in records if q == p] for p in range(PARTITIONS)}
    gaps = sum(max(o) + 1 - len(o) for o in offsets.values() if o)
    assert gaps > 0, "no offset gap: the topic was not compacted"
    assert all(value is not None for *_, value in records), "a tombstone survived"

    # a new instance with empty storage recovers the compacted table ...
    second = processor_factory(graph, storage=goka.LMDBStorage(str(tmp_path)))

    def recovered_all() -> bool:
        partitions = second.processor.stats()["partitions"]
        running = [p for p in partitions.values() if p["state"] == "running"]
        return len(running) == PARTITIONS

    wait_until(recovered_all, "the second processor runs every partition")
    assert table_rows(second.processor) == reference
    recovered = sum(p["recovered_records"] for p in second.processor.stats()["partitions"].values())
    assert recovered == len(records)
    # ... and so does a view
    with goka.View(goka_brokers, table, codec.String()) as view:
        assert view.wait_running(TIMEOUT)
        assert dict(view.items()) == reference
    assert second.stop() is None
