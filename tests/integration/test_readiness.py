"""Readiness of a view pod (``python -m viewsvc serve-view``) recovering a large table: its
grpc.health.v1 status is NOT_SERVING while it replays the 200,000 rows and SERVING after,
reads during recovery fail only with UNAVAILABLE (no running replica) or answer correctly,
and reads after answer from the recovered copy.

The table topic is filled once per module, straight through a confluent-kafka producer with
librdkafka's ``murmur2_random`` partitioner (goka's ``murmur2``), in batches of 10,000.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from confluent_kafka import KafkaError, Message, Producer
from grpc_health.v1 import health_pb2, health_pb2_grpc

import goka
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup, unique
from tests.support.serving import serving_line
from viewsvc.v1 import table_pb2 as pb
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import open_channel

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROWS = 200_000
PARTITIONS = 4
BOUND = 90.0
"""Bounds every wait (the fill and the recovery take seconds on the dev broker)."""
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def key_of(index: int) -> bytes:
    return b"user-%07d" % index


def value_of(index: int) -> bytes:
    return b"%d" % (index % 1000)  # int64 values, as a click-count table holds


@dataclass(frozen=True)
class Table:
    topic: str
    last_keys: dict[int, bytes]
    """Partition -> the key written last to it: the last row a recovery applies."""


@pytest.fixture(scope="module")
def table(goka_brokers: str) -> Iterator[Table]:
    topic = unique("readiness-table")
    manager = goka.TopicManager(goka_brokers)
    manager.ensure_table(topic, PARTITIONS)
    try:
        yield Table(topic, fill(goka_brokers, topic))
    finally:
        manager.delete([topic])


def fill(brokers: str, topic: str) -> dict[int, bytes]:
    """Writes ROWS distinct keys, in big batches, then the last row of each partition alone;
    returns those last keys.

    The last rows go alone because the dev broker (Tansu) answers a ListOffsets request for
    the end of a partition with the base offset of its last batch + 1, and a view counts a
    partition caught up at the end queried when it starts: ending on a batch of one row makes
    that answer exact, so SERVING can be checked to mean every row is there.
    """
    last: dict[int, tuple[int, bytes]] = {}
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
            return
        partition, offset, key = msg.partition(), msg.offset(), msg.key()
        assert partition is not None and offset is not None and isinstance(key, bytes)
        if offset > last.get(partition, (-1, b""))[0]:
            last[partition] = (offset, key)

    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "partitioner": "murmur2_random",
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": ROWS,
            "on_delivery": delivered,
        }
    )
    lasts: dict[int, int] = {}  # partition -> index of its last row, from the top indexes
    for index in range(ROWS - 1, -1, -1):
        lasts.setdefault(murmur2(key_of(index), PARTITIONS), index)
        if len(lasts) == PARTITIONS:
            break
    for index in range(ROWS):
        if index in lasts.values():
            continue
        while True:
            try:
                producer.produce(topic, value_of(index), key_of(index))
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(BOUND) == 0, f"not every row was acknowledged within {BOUND}s"
    for partition, index in sorted(lasts.items()):
        producer.produce(topic, value_of(index), key_of(index), partition=partition)
        assert producer.flush(BOUND) == 0, f"the last row was not acknowledged within {BOUND}s"
    assert not errors, errors[:3]
    assert {p: key for p, (_, key) in last.items()} == {p: key_of(i) for p, i in lasts.items()}
    return {partition: key_of(index) for partition, index in lasts.items()}


def start_view(
    processes: ProcessGroup, brokers: str, table: Table, storage: Path, *extra: str
) -> str:
    """A view pod holding every partition of the table; its endpoint once it listens."""
    proc = processes.start(
        "-m", "viewsvc", "serve-view", "--brokers", brokers, "--table", table.topic,
        "--partitioner", "murmur2", "--value-codec", "int64", "--storage", str(storage),
        "--listen", "127.0.0.1:0", "--heartbeat", "0.5",
        "--discovery-topic", unique("discovery"), *extra,
    )  # fmt: skip
    return serving_line(proc, BOUND)[1]


def get(stub: Any, table: str, key: bytes) -> tuple[grpc.StatusCode, pb.GetResponse | None]:
    request = pb.GetRequest(table=table, key=key)
    try:
        return grpc.StatusCode.OK, stub.Get(request, timeout=5.0)
    except grpc.RpcError as exc:
        return exc.code(), None


def expected(key: bytes) -> bytes:
    return value_of(int(key.removeprefix(b"user-")))


@pytest.mark.parametrize("ready_max_lag", [None, 0], ids=["running-is-ready", "ready-max-lag-0"])
def test_not_serving_while_recovering_200000_rows_then_serving(
    goka_brokers: str,
    table: Table,
    processes: ProcessGroup,
    tmp_path: Path,
    ready_max_lag: int | None,
) -> None:
    extra = () if ready_max_lag is None else ("--ready-max-lag", str(ready_max_lag))
    started = time.monotonic()
    endpoint = start_view(processes, goka_brokers, table, tmp_path / "view", *extra)
    listening = time.monotonic()
    probe_key = table.last_keys[0]
    statuses: list[int] = []
    during: dict[grpc.StatusCode, int] = {}
    with open_channel(endpoint) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = table_pb2_grpc.TableServiceStub(channel)  # type: ignore[no-untyped-call]
        while not statuses or statuses[-1] != SERVING:
            assert time.monotonic() - listening < BOUND, (
                f"not SERVING {BOUND}s after listening; statuses {sorted(set(statuses))}"
            )
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5.0).status
            statuses.append(status)
            if status == NOT_SERVING:
                code, response = get(stub, table.topic, probe_key)
                during[code] = during.get(code, 0) + 1
                if response is not None:  # its partition has recovered: the value is right
                    assert (response.found, response.value) == (True, expected(probe_key))
            time.sleep(0.02)
        serving = time.monotonic()
        # once SERVING, every partition's last row is there
        for partition, key in sorted(table.last_keys.items()):
            code, response = get(stub, table.topic, key)
            assert code == grpc.StatusCode.OK, (partition, code)
            assert response is not None
            assert (response.found, response.value, response.partition) == (
                True,
                expected(key),
                partition,
            )
    print(
        f"\n{ROWS} rows, ready_max_lag={ready_max_lag}: listening {listening - started:.1f}s "
        f"after start, SERVING {serving - listening:.1f}s later; {len(statuses)} health "
        f"checks, Gets meanwhile: { {c.name: n for c, n in during.items()} }"
    )
    assert statuses[0] == NOT_SERVING, "SERVING at once: the recovery was not observed"
    assert set(statuses) == {NOT_SERVING, SERVING}
    assert statuses.index(SERVING) == len(statuses) - 1
    assert during, "no Get was sent while NOT_SERVING"
    unexpected = set(during) - {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert not unexpected, f"Gets during recovery failed with {during}"
