"""A processor in doubt about its membership (see goka._stall) that gets an assignment while
it polls: the partitions it keeps resume at what is stored, and no message the same poll
handed out after the assignment is lost.

The consumer is a scripted stand-in: the order of events inside one librdkafka poll (the
rebalance callback served, then messages fetched from the new position returned by the same
call) cannot be forced on a real broker, and it is that order which lost a batch under
KIP-848 (tests/e2e/test_zombie_writes.py saw it as exactly-once counts one short).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

import goka
from goka import codec
from goka._partition import PartitionTask

TOPIC = "clicks"


@dataclass
class Message:
    _partition: int
    _offset: int

    def partition(self) -> int:
        return self._partition

    def topic(self) -> str:
        return TOPIC

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


@dataclass
class ScriptedConsumer:
    """Keeps each partition's fetch position and pause state; ``poll`` serves the rebalance
    callback ``on_poll`` and then returns the message at the position it left, as
    librdkafka's fetcher would after the callback's seek and resume."""

    positions: dict[int, int]
    on_poll: Any = None
    paused: set[int] = field(default_factory=set)
    commits_refused: bool = True

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def poll(self, timeout: float) -> Any:
        callback, self.on_poll = self.on_poll, None
        if callback is not None:
            callback(self)
        for partition, offset in self.positions.items():
            if partition not in self.paused:
                self.positions[partition] = offset + 1
                return Message(partition, offset)
        return None

    def seek(self, tp: TopicPartition) -> None:
        self.positions[tp.partition] = tp.offset

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        if self.commits_refused:  # the member epoch moved on: the doubt stays
            raise KafkaException(KafkaError(KafkaError.STALE_MEMBER_EPOCH))
        return offsets


@dataclass
class KeptAssignment:
    """The incremental assignment of KIP-848: the partitions kept are not assigned anew."""

    tasks: dict[int, PartitionTask]
    inputs: tuple[str, ...] = (TOPIC,)

    def assign(self, consumer: Any, assigned: list[TopicPartition]) -> None:
        pass


@dataclass
class Runner:
    failure: BaseException | None = None


def running_task(partition: int, stored: int) -> PartitionTask:
    task = PartitionTask(partition, store=None, state="running")
    task.start[TOPIC] = 0
    task.next_input[TOPIC] = stored
    return task


def processor() -> goka.Processor:
    graph = goka.define_group("doubting", goka.input(TOPIC, codec.String(), lambda ctx, m: None))
    return goka.Processor("127.0.0.1:1", graph, guarantee="exactly_once")


def test_an_assignment_during_a_doubtful_poll_loses_no_message_of_the_kept_partitions() -> None:
    proc = processor()
    assignment = KeptAssignment({0: running_task(0, stored=382)})
    # the batch from 382 was dropped; the consumer had fetched on to 390 when it paused
    consumer = ScriptedConsumer(positions={0: 390}, paused={0})
    proc._in_doubt = True
    consumer.on_poll = lambda c: proc._on_assign(c, [], assignment)  # type: ignore[arg-type]

    proc._process_once(consumer, Runner(), assignment)  # type: ignore[arg-type]

    assert not proc._in_doubt
    assert consumer.paused == set()
    # whatever that poll returned was held back: processing goes on at what is stored
    assert consumer.positions == {0: 382}


def test_a_doubtful_poll_without_an_assignment_keeps_the_partitions_paused() -> None:
    proc = processor()
    assignment = KeptAssignment({0: running_task(0, stored=382)})
    consumer = ScriptedConsumer(positions={0: 390}, paused={0})
    proc._in_doubt = True

    proc._process_once(consumer, Runner(), assignment)  # type: ignore[arg-type]

    assert proc._in_doubt
    assert consumer.paused == {0} and consumer.positions == {0: 390}
