"""The tester's topics: per partition, a list of records with offsets, all in memory."""

from __future__ import annotations

from goka._host import Headers
from goka.errors import ConfigError, TopicError

__all__ = ["Record", "Topics"]


_TIMESTAMP_CREATE_TIME = 1


class Record:
    """One message of a tester topic; reads like a ``confluent_kafka.Message`` to a Context.

    ``seq`` orders every record of the tester: cascades are processed in that order.
    """

    __slots__ = (
        "_headers",
        "_key",
        "_offset",
        "_partition",
        "_timestamp",
        "_topic",
        "_value",
        "seq",
    )

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes,
        value: bytes | None,
        headers: Headers | None,
        timestamp_ms: int,
        seq: int,
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._timestamp = timestamp_ms
        self.seq = seq

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Headers | None:
        return None if self._headers is None else list(self._headers)

    def timestamp(self) -> tuple[int, int]:
        return (_TIMESTAMP_CREATE_TIME, self._timestamp)

    def error(self) -> None:
        return None

    def __repr__(self) -> str:
        return (
            f"Record(topic={self._topic!r}, partition={self._partition}, "
            f"offset={self._offset}, key={self._key!r}, value={self._value!r})"
        )


class Topics:
    """Every topic of a tester, created on first use with ``default_partitions``."""

    def __init__(self, default_partitions: int) -> None:
        self.default_partitions = default_partitions
        self._logs: dict[str, list[list[Record]]] = {}
        self._seq = 0

    def count(self, name: str) -> int | None:
        """The partition count of ``name``, None if the topic was not used yet."""
        log = self._logs.get(name)
        return None if log is None else len(log)

    def declare(self, name: str, partitions: int) -> None:
        if type(partitions) is not int or partitions < 1:
            raise ConfigError(f"topic {name!r}: partitions must be an int >= 1, got {partitions!r}")
        existing = self.count(name)
        if existing is not None and existing != partitions:
            raise TopicError(
                f"topic {name!r} is already in use with {existing} partitions; call "
                f"tester.topic({name!r}, partitions={partitions}) before its first use "
                "(before add_processor, consume, table or output_tracker)"
            )
        self.ensure(name, partitions, purpose="tester.topic()")

    def ensure(self, name: str, partitions: int | None = None, *, purpose: str = "") -> int:
        """Creates ``name`` unless it exists; raises TopicError if its count is not
        ``partitions`` (when given). Returns the partition count."""
        existing = self.count(name)
        if existing is None:
            count = self.default_partitions if partitions is None else partitions
            self._logs[name] = [[] for _ in range(count)]
            return count
        if partitions is not None and existing != partitions:
            raise TopicError(
                f"topic {name!r} has {existing} partitions, but {purpose} needs {partitions}: "
                f"declare partition counts before first use, e.g. "
                f"tester.topic({name!r}, partitions={partitions})"
            )
        return existing

    def partition(self, name: str, partition: int) -> list[Record]:
        """The records of one partition (empty for an unknown topic); do not modify."""
        log = self._logs.get(name)
        return [] if log is None else log[partition]

    def ends(self, name: str) -> list[int]:
        """The next offset of each partition ([] for an unknown topic)."""
        return [len(records) for records in self._logs.get(name, [])]

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes | None,
        headers: Headers | None,
        timestamp_ms: int,
    ) -> Record:
        records = self._logs[topic][partition]
        self._seq += 1
        record = Record(
            topic, partition, len(records), key, value, headers, timestamp_ms, self._seq
        )
        records.append(record)
        return record
