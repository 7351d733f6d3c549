"""Read access to the table partitions a process holds, for servers outside ``goka``.

A processor (``Processor.local_table()``) and a view (``View.local_table()``) hand out a
``LocalTable``: which partitions of which table they hold, in which role and state, and
consistent reads of them. ``viewsvc`` serves these over gRPC; ``goka`` knows nothing of it.
Reads are safe from any thread; a partition released meanwhile raises ``PartitionNotHeld``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from goka.changes import ChangeFeed
from goka.errors import PartitionNotHeld

__all__ = [
    "HeldPartition",
    "LocalTable",
    "PartitionKind",
    "PartitionNotHeld",
    "PartitionState",
    "TableMeta",
]

PartitionKind = Literal["active", "standby", "replica"]
PartitionState = Literal["recovering", "running"]


@dataclass(frozen=True)
class TableMeta:
    """A table and how to route and decode its keys and values."""

    name: str
    key_codec: str
    value_codec: str
    partitioner: str
    partition_count: int


@dataclass(frozen=True)
class HeldPartition:
    partition: int
    kind: PartitionKind
    state: PartitionState
    applied_offset: int
    """The next table-topic offset the local copy would apply; -1 if nothing applied."""
    lag: int
    """Offsets behind the end of the table partition; -1 if unknown."""


class LocalTable(Protocol):
    @property
    def meta(self) -> TableMeta | None:
        """The table; None until the holder knows it (a processor learns the partition
        count when it starts)."""

    def held(self) -> dict[int, HeldPartition]:
        """The partitions held now; cheap enough to call on every request."""

    def read(self, partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        """The stored values of ``keys`` of one partition (None if absent) and the applied
        offset they reflect (-1 if nothing applied), from one snapshot."""

    def items(
        self, partition: int, start: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Rows with ``start <= key < end`` in key order."""

    def changes(self, partition: int) -> ChangeFeed | None:
        """The change feed of a held partition (see ``goka.changes``); None if its changes
        are not published here."""

    @property
    def input_topics(self) -> frozenset[str]:
        """The topics :meth:`processed_offset` knows: the inputs (and loop topic) of the
        group writing the table; empty for a view."""

    def processed_offset(self, partition: int, topic: str) -> int | None:
        """For an active partition, the next offset of input ``topic`` whose results are not
        yet stored (all before it are in the table); None if unknown here."""

    def unreachable_for(self) -> float:
        """Seconds the holder has had no broker connection up (0.0: it has one), during
        which the lag of what it holds is unknown."""
