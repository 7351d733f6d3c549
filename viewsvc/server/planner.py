"""What every serving node knows: its own partitions, the membership, and how to reach other
members. Decides for each partition whether to answer locally or whom to forward to."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from discovery import routing
from discovery.model import MemberInfo, Owner
from goka.local_table import HeldPartition, LocalTable, PartitionNotHeld, TableMeta
from goka.partitioner import get_partitioner
from viewsvc.server.limits import Limits
from viewsvc.server.local_tables import LocalTables
from viewsvc.v1 import table_pb2_grpc
from viewsvc.wire.channels import ChannelPool, retryable
from viewsvc.wire.read_options import ReadFailure, ReadOptions, candidates, invalid, local_ok

__all__ = ["FORWARDED_BY", "Local", "Node"]

FORWARDED_BY = "x-goka-forwarded-by"
"""Metadata marking a forwarded request (value: the forwarding member); never forwarded again."""

_WAIT_STEP = 0.002
T = TypeVar("T")


@dataclass(frozen=True)
class Local:
    """A partition this node answers from."""

    table: LocalTable
    held: HeldPartition


class Node:
    def __init__(
        self,
        member_id: str,
        tables: LocalTables,
        members: Callable[[], list[MemberInfo]],
        channels: ChannelPool,
        limits: Limits,
    ) -> None:
        self.member_id = member_id
        self.tables = tables
        self.members = members
        self.limits = limits
        self._channels = channels
        self._stubs: dict[str, Any] = {}
        self.on_forward: Callable[[str], None] = lambda method: None
        """Called with the method name of every call forwarded (for metrics)."""

    # -- tables --------------------------------------------------------------------------

    def meta(self, table: str) -> TableMeta:
        """The table's meta, from local partitions or the membership; NOT_FOUND if unknown."""
        if not table:
            raise invalid("table", "is empty: name a table topic, e.g. 'clicks-counter-table'")
        local = self.tables.get(table)
        if local is not None:
            return local[1]
        info = routing.table_info(self.members(), table)
        if info is None:
            known = sorted({m.name for m in self.metas()})
            raise ReadFailure(
                grpc.StatusCode.NOT_FOUND,
                f"table {table!r} is not served: no live member announces it (tables: {known})",
            )
        return TableMeta(
            name=info.topic,
            key_codec=info.key_codec,
            value_codec=info.value_codec,
            partitioner=info.partitioner,
            partition_count=info.partition_count,
        )

    def metas(self) -> list[TableMeta]:
        """Every table served by the deployment (local ones first, then announced ones)."""
        found = {meta.name: meta for meta in self.tables.metas()}
        for member in self.members():
            for info in member.tables:
                found.setdefault(
                    info.topic,
                    TableMeta(
                        info.topic,
                        info.key_codec,
                        info.value_codec,
                        info.partitioner,
                        info.partition_count,
                    ),
                )
        return [found[name] for name in sorted(found)]

    def check_key(self, key: bytes, field: str = "key") -> None:
        if len(key) > self.limits.max_key_bytes:
            raise invalid(
                field, f"is {len(key)} bytes, over the limit of {self.limits.max_key_bytes}"
            )

    def partition_of(self, meta: TableMeta, key: bytes) -> int:
        return get_partitioner(meta.partitioner)(key, meta.partition_count)

    # -- choosing who answers -------------------------------------------------------------

    def local(self, table: str, partition: int, options: ReadOptions) -> Local | None:
        """The local copy of the partition if it may answer."""
        found = self.tables.get(table)
        if found is None:
            return None
        held = found[2].get(partition)
        if held is None or not local_ok(held, options):
            return None
        return Local(found[0], held)

    def remote(
        self, table: str, partition: int, options: ReadOptions, *, forwarded: bool
    ) -> list[Owner]:
        """Members to forward to, best first; raises ReadFailure if none (or if the request
        was already forwarded once: the origin then tries its next candidate)."""
        if forwarded:
            raise ReadFailure(
                grpc.StatusCode.UNAVAILABLE,
                f"partition {partition} of {table!r} cannot be served by {self.member_id} with "
                "these read options, and a forwarded request is not forwarded again",
            )
        try:
            return candidates(self.members(), table, partition, options, exclude=self.member_id)
        except ReadFailure as failure:
            found = self.tables.get(table)
            held = found[2].get(partition) if found is not None else None
            if (
                failure.code == grpc.StatusCode.UNAVAILABLE
                and held is not None
                and (options.max_lag and held.state == "running" and held.lag > options.max_lag)
            ):
                raise ReadFailure(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"no replica of partition {partition} of {table!r} is within "
                    f"max_lag={options.max_lag} (this node's lag: {held.lag}); raise max_lag "
                    "or retry later",
                ) from None
            raise

    # -- local reads ----------------------------------------------------------------------

    def wait_applied(
        self, local: Local, table: str, partition: int, options: ReadOptions, deadline: float
    ) -> None:
        """Waits until the local copy applied the partition's min_offsets bound (if any);
        DEADLINE_EXCEEDED when the deadline comes first."""
        wanted = options.min_offset(partition)
        if wanted is None:
            return
        topic = options.min_offsets_topic
        while True:
            if topic:
                position = local.table.processed_offset(partition, topic)
            else:
                position = local.table.held().get(partition, local.held).applied_offset
            if position is not None and position > wanted:
                return
            if time.monotonic() >= deadline:
                raise ReadFailure(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"partition {partition} of {table!r} on {self.member_id} has not applied "
                    f"offset {wanted} of {topic or table!r} within the deadline (at "
                    f"{position}); retry with a longer deadline",
                )
            time.sleep(_WAIT_STEP)

    @staticmethod
    def read(local: Local, partition: int, keys: list[bytes]) -> tuple[list[bytes | None], int]:
        try:
            return local.table.read(partition, keys)
        except PartitionNotHeld as exc:
            raise ReadFailure(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc

    # -- forwarding -----------------------------------------------------------------------

    def stub(self, endpoint: str, method: str) -> Any:
        """The stub to forward a ``method`` call to ``endpoint``, counted as forwarded."""
        self.on_forward(method)
        stub = self._stubs.get(endpoint)
        if stub is None:
            stub = table_pb2_grpc.TableServiceStub(self._channels.channel(endpoint))  # type: ignore[no-untyped-call]
            self._stubs[endpoint] = stub
        return stub

    def forward_metadata(self) -> tuple[tuple[str, str], ...]:
        return (*self._channels.metadata(), (FORWARDED_BY, self.member_id))

    def forward(
        self,
        owners: Sequence[Owner],
        call: Callable[[Any, float], T],
        deadline: float,
        what: str,
    ) -> T:
        """``call(stub, timeout)`` on the first owner that is not UNAVAILABLE."""
        failures = []
        for owner in owners:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return call(self.stub(owner.endpoint, "Get"), remaining)
            except grpc.RpcError as exc:
                code = exc.code()
                if not retryable(code):
                    raise ReadFailure(code, exc.details() or str(code)) from exc
                failures.append(f"{owner.member_id} at {owner.endpoint}: {exc.details()}")
        if not failures:
            raise ReadFailure(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"{what}: the deadline passed before forwarding"
            )
        raise ReadFailure(
            grpc.StatusCode.UNAVAILABLE, f"{what}: every replica failed: {'; '.join(failures)}"
        )

    def deadline(self, context: grpc.ServicerContext) -> float:
        remaining: float | None = context.time_remaining()
        if remaining is None or remaining > self.limits.default_deadline:
            remaining = self.limits.default_deadline
        return time.monotonic() + remaining

    def close(self) -> None:
        self._channels.close()
