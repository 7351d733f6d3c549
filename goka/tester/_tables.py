"""Tables in the tester: a read-write handle for tests, and a View look-alike."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from goka.codec import Codec
from goka.errors import ConfigError, TopicError
from goka.storage.base import key_range
from goka.tester._core import Core

__all__ = ["TableHandle", "TesterView"]

T = TypeVar("T")


def _rows(
    core: Core, table: str, low: bytes | None = None, high: bytes | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """Every row of ``table`` with ``low <= key < high``, in key order across partitions."""
    count = core.topics.count(table) or 0
    stores = [core.store(table, partition) for partition in range(count)]
    return heapq.merge(*(store.items(low, high) for store in stores), key=lambda row: row[0])


class TableHandle(Generic[T]):
    """Reads and writes a table in a test, as Goka's tester does (``tester.table(name)``).

    Values are encoded with the table's codec. Writes go to the table topic and the table
    itself, so they are what the owning group's callbacks read (``ctx.value()``) and what
    joins and lookups of other groups see.
    """

    def __init__(self, core: Core, table: str, codec: Codec[T]) -> None:
        self._core = core
        self.table = table
        self.codec = codec

    def _partition(self, raw_key: bytes, create: bool) -> int | None:
        count = (
            self._core.topics.ensure(self.table) if create else self._core.topics.count(self.table)
        )
        return None if count is None else self._core.partition_for(raw_key, count)

    def get(self, key: str) -> T | None:
        """The key's value, None if it has none."""
        raw_key = _check_key(key)
        partition = self._partition(raw_key, create=False)
        if partition is None:
            return None
        raw = self._core.store(self.table, partition).get(raw_key)
        return None if raw is None else self.codec.decode(raw)

    def set(self, key: str, value: T) -> None:
        """Set the key's value (creates the table topic with the default partition count)."""
        if value is None:
            raise ConfigError(f"table {self.table!r}: set(key, None) is not allowed; use delete")
        raw_key = _check_key(key)
        partition = self._partition(raw_key, create=True)
        assert partition is not None
        self._core.write_table(self.table, partition, {raw_key: self.codec.encode(value)})

    def delete(self, key: str) -> None:
        """Delete the key (a tombstone in the table topic)."""
        raw_key = _check_key(key)
        partition = self._partition(raw_key, create=False)
        if partition is not None:
            self._core.write_table(self.table, partition, {raw_key: None})

    def keys(self) -> list[str]:
        """Every key, sorted."""
        return [key.decode() for key, _ in _rows(self._core, self.table)]

    def items(self) -> list[tuple[str, T]]:
        """Every (key, value), sorted by key."""
        decode = self.codec.decode
        return [(key.decode(), decode(raw)) for key, raw in _rows(self._core, self.table)]

    def clear(self) -> None:
        """Delete every key."""
        for partition in range(self._core.topics.count(self.table) or 0):
            keys = [key for key, _ in self._core.store(self.table, partition).items()]
            if keys:
                self._core.write_table(self.table, partition, dict.fromkeys(keys))

    def __repr__(self) -> str:
        return f"TableHandle({self.table!r}, {self.codec!r})"


class TesterView(Generic[T]):
    """The read API of :class:`goka.View` over a tester table; always ``running``.

    Starting, stopping and ``with`` work as on a View and change nothing.
    """

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    def __init__(self, core: Core, table: str, codec: Codec[T]) -> None:
        count = core.topics.count(table)
        if count is None:
            raise TopicError(
                f"table topic {table!r} does not exist in the tester: add the processor of "
                "its group first (tester.add_processor), or set a value with "
                f"tester.table({table!r}, codec).set(key, value)"
            )
        self._core = core
        self.table = table
        self.codec = codec
        self.partition_count = count
        self.partitions: tuple[int, ...] = tuple(range(count))

    @property
    def state(self) -> Literal["running"]:
        return "running"

    def start(self) -> TesterView[T]:
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Nothing to stop."""

    def wait_running(self, timeout: float | None = None) -> bool:
        """True: a tester view is always caught up."""
        return True

    def partition_of(self, key: str) -> int:
        return self._core.partition_for(key.encode(), self.partition_count)

    def get(self, key: str) -> T | None:
        """The key's value (None if absent)."""
        raw_key = _check_key(key)
        raw = self._core.store(self.table, self.partition_of(key)).get(raw_key)
        return None if raw is None else self.codec.decode(raw)

    def items(
        self, *, prefix: str | None = None, start: str | None = None, end: str | None = None
    ) -> Iterator[tuple[str, T]]:
        """(key, value) pairs in key order; ``prefix``, ``start`` (inclusive) and ``end``
        (exclusive) combine, as on :meth:`goka.View.items`."""
        low, high = key_range(prefix, start, end)
        decode = self.codec.decode
        for raw_key, raw_value in _rows(self._core, self.table, low, high):
            yield raw_key.decode(), decode(raw_value)

    def __enter__(self) -> TesterView[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _check_key(key: Any) -> bytes:
    if not isinstance(key, str):
        raise ConfigError(f"keys are str, got {type(key).__name__}: {key!r}")
    return key.encode()
