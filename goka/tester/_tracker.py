"""Reading what the processors wrote to a topic, message by message, in a test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from goka.codec import Codec
from goka.errors import ConfigError, ExpectationError
from goka.tester._core import Core
from goka.tester._topics import Record

__all__ = ["OutputTracker", "TrackedMessage"]

_SHOWN = 10


@dataclass(frozen=True, slots=True)
class TrackedMessage:
    """A message read by an :class:`OutputTracker`; ``value`` is decoded (None: tombstone)."""

    key: str
    value: Any
    headers: dict[str, bytes]
    partition: int
    offset: int


class OutputTracker:
    """Follows one topic from where it ended when the tracker was made.

    Messages come in the order they were written, across partitions. ``offset`` counts the
    messages this tracker has returned from ``next()``.
    """

    def __init__(self, core: Core, topic: str, codec: Codec[Any] | None) -> None:
        self._core = core
        self.topic = topic
        self._codec = codec
        self._positions = core.topics.ends(topic)
        self.offset = 0
        """How many messages ``next()`` has returned."""

    def _pending(self) -> list[Record]:
        """Every record not read yet, in the order they were written."""
        topics = self._core.topics
        ends = topics.ends(self.topic)
        self._positions += [0] * (len(ends) - len(self._positions))  # created after the tracker
        pending = [
            record
            for partition, position in enumerate(self._positions)
            for record in topics.partition(self.topic, partition)[position:]
        ]
        return sorted(pending, key=lambda record: record.seq)

    def _first(self) -> Record | None:
        topics = self._core.topics
        ends = topics.ends(self.topic)
        self._positions += [0] * (len(ends) - len(self._positions))
        first: Record | None = None
        for partition, position in enumerate(self._positions):
            if position < ends[partition]:
                record = topics.partition(self.topic, partition)[position]
                if first is None or record.seq < first.seq:
                    first = record
        return first

    def _decode(self, record: Record) -> TrackedMessage:
        codec = self._codec or self._core.topic_codec(self.topic)
        if codec is None:
            raise ConfigError(
                f"the tester does not know the codec of topic {self.topic!r}: no registered "
                "group writes or reads it; pass one, "
                f"tester.output_tracker({self.topic!r}, codec)"
            )
        raw = record.value()
        return TrackedMessage(
            key=record.key().decode(errors="surrogateescape"),
            value=None if raw is None else codec.decode(raw),
            headers={name: value or b"" for name, value in record.headers() or []},
            partition=record.partition(),
            offset=record.offset(),
        )

    def peek(self) -> TrackedMessage | None:
        """The next message without consuming it; None if there is none."""
        record = self._first()
        return None if record is None else self._decode(record)

    def next(self) -> TrackedMessage | None:
        """The next message, None if the tracker has read everything written so far."""
        record = self._first()
        if record is None:
            return None
        message = self._decode(record)
        self._positions[record.partition()] += 1
        self.offset += 1
        return message

    def __iter__(self) -> OutputTracker:
        return self

    def __next__(self) -> TrackedMessage:
        message = self.next()
        if message is None:
            raise StopIteration
        return message

    def expect_empty(self) -> None:
        """Raise ExpectationError (an AssertionError) listing the messages not read yet."""
        pending = self._pending()
        if not pending:
            return
        shown = ", ".join(
            f"{r.key().decode(errors='replace')!r}={r.value()!r} (partition {r.partition()} "
            f"offset {r.offset()})"
            for r in pending[:_SHOWN]
        )
        more = f" and {len(pending) - _SHOWN} more" if len(pending) > _SHOWN else ""
        raise ExpectationError(
            f"topic {self.topic!r} has {len(pending)} message(s) the tracker has not read: "
            f"{shown}{more}"
        )

    def __repr__(self) -> str:
        return f"OutputTracker({self.topic!r}, offset={self.offset})"
