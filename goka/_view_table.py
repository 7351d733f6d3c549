"""A view's partitions as a ``LocalTable`` (see ``goka.local_table``): replicas, running
once caught up with the table topic."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from goka.changes import ChangeFeed
from goka.errors import StorageError
from goka.local_table import HeldPartition, PartitionNotHeld, TableMeta

if TYPE_CHECKING:
    from goka.view import View

__all__ = ["ViewTable"]


class ViewTable:
    def __init__(self, view: View[Any], value_codec: str) -> None:
        self._view = view
        self.meta: TableMeta | None = TableMeta(
            name=view.table,
            key_codec="string",
            value_codec=value_codec,
            partitioner=view.partitioner,
            partition_count=view.partition_count,
        )

    def held(self) -> dict[int, HeldPartition]:
        return self._view.held()

    def read(self, partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        try:
            values, offset = self._view.store(partition).read(keys)
        except StorageError as exc:
            raise PartitionNotHeld(f"partition {partition} is closed: {exc}") from exc
        return values, -1 if offset is None else offset

    def items(
        self, partition: int, start: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        try:
            yield from self._view.store(partition).items(start, end)
        except StorageError as exc:
            raise PartitionNotHeld(f"partition {partition} is closed: {exc}") from exc

    input_topics: frozenset[str] = frozenset()

    def changes(self, partition: int) -> ChangeFeed | None:
        return self._view.changes.get(partition)

    def processed_offset(self, partition: int, topic: str) -> int | None:
        return None  # a view does not process inputs

    def unreachable_for(self) -> float:
        return self._view.unreachable_for()
