"""The read decision of a serving node: for each partition a request reads, answer from the
local copy or forward to other members, best first, within the request's deadline.

Every servicer asks the :class:`ReadPlanner`: it knows the node's own partitions, the
membership, and how to reach other members. Failures are :class:`ReadFailure`, a status code
and a message that says what to do; the servicers end the call with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from discovery import routing
from discovery.model import MemberInfo, Owner
from goka.local_table import HeldPartition, LocalTable, PartitionNotHeld, TableMeta
from goka.partitioner import get_partitioner
from viewsvc.server.limits import Limits
from viewsvc.server.local_tables import LocalTables
from viewsvc.wire.channels import FORWARDED_BY, ChannelPool
from viewsvc.wire.errors import InvalidArgument
from viewsvc.wire.failover import Exhausted, Sent, first_answer, grouped
from viewsvc.wire.read_options import DEFAULTS, ReadOptions, eligible, running

__all__ = ["Local", "ReadFailure", "ReadPlanner", "invalid"]

_WAIT_STEP = 0.002
T = TypeVar("T")


class ReadFailure(Exception):
    """Ends a call with a status code and a message that says what to do."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, why: str) -> ReadFailure:
    return ReadFailure(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {why}")


@dataclass(frozen=True)
class Local:
    """A partition this node answers from."""

    table: LocalTable
    held: HeldPartition


class ReadPlanner:
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
        self.on_forward: Callable[[str], None] = lambda method: None
        """Called with the method name of every call forwarded (for metrics)."""

    # -- the request --------------------------------------------------------------------

    def meta(self, table: str) -> TableMeta:
        """The table's meta, from local partitions or the membership; NOT_FOUND if unknown."""
        if not table:
            raise invalid("table", "is empty: name a table topic, e.g. 'clicks-counter-table'")
        local = self.tables.get(table)
        if local is not None:
            return local.meta
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

    @staticmethod
    def options(request: Any, meta: TableMeta) -> ReadOptions:
        """The validated read options of ``request`` (a message with ``options``)."""
        if not request.HasField("options"):
            return DEFAULTS
        try:
            return ReadOptions.from_pb(request.options, meta.name, meta.partition_count)
        except InvalidArgument as exc:
            raise invalid(exc.field, str(exc)) from exc

    def check_key(self, key: bytes, field: str = "key") -> None:
        if len(key) > self.limits.max_key_bytes:
            raise invalid(
                field, f"is {len(key)} bytes, over the limit of {self.limits.max_key_bytes}"
            )

    def partition_of(self, meta: TableMeta, key: bytes) -> int:
        return get_partitioner(meta.partitioner)(key, meta.partition_count)

    def deadline(self, context: grpc.ServicerContext) -> float:
        remaining: float | None = context.time_remaining()
        if remaining is None or remaining > self.limits.default_deadline:
            remaining = self.limits.default_deadline
        return time.monotonic() + remaining

    # -- who answers ----------------------------------------------------------------------

    def local(self, table: str, partition: int, options: ReadOptions) -> Local | None:
        """The local copy of the partition if it may answer (once it reached any
        min_offsets, see :meth:`wait_applied`)."""
        found = self.tables.get(table)
        if found is None:
            return None
        held = found.partitions.get(partition)
        if held is None or held.state != "running":
            return None
        if options.active_only and held.kind != "active":
            return None
        if options.max_lag and not 0 <= held.lag <= options.max_lag:
            return None
        return Local(found.table, held)

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
        holders = [
            o
            for o in routing.owners(self.members(), table, partition)
            if o.member_id != self.member_id
        ]
        chosen = eligible(holders, options)
        if chosen:
            return chosen
        answering = running(holders, options)
        if answering:  # running, but none within max_lag
            least = min((o.lag for o in answering if o.lag >= 0), default=None)
            raise _too_far(
                table, partition, options, f"least lag: {'unknown' if least is None else least}"
            )
        own = self.tables.held(table, partition)
        if (
            options.max_lag
            and own is not None
            and own.state == "running"
            and own.lag > options.max_lag
        ):
            raise _too_far(table, partition, options, f"this node's lag: {own.lag}")
        raise ReadFailure(grpc.StatusCode.UNAVAILABLE, _none_running(table, partition, holders))

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
        if topic and topic not in local.table.input_topics:
            known = sorted(local.table.input_topics)
            raise invalid(
                "options.min_offsets_topic",
                f"{topic!r} is not an input of the group writing {table!r} (inputs: {known}); "
                "pass one of them, or none for offsets of the table topic",
            )
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
        return self._channels.table_stub(endpoint)

    def aio_stub(self, endpoint: str, method: str) -> Any:
        """The asyncio stub to forward a ``method`` stream to ``endpoint``, counted as
        forwarded (for the server's event loop)."""
        self.on_forward(method)
        return self._channels.aio_table_stub(endpoint)

    async def aclose(self) -> None:
        await self._channels.aclose()

    def forward_metadata(self) -> tuple[tuple[str, str], ...]:
        return (*self._channels.metadata(), (FORWARDED_BY, self.member_id))

    def forward(
        self,
        owners: Sequence[Owner],
        method: str,
        request: Any,
        deadline: float,
        what: str,
    ) -> Any:
        """``TableService.<method>(request)`` on the first of ``owners`` that answers."""
        metadata = self.forward_metadata()

        def call(endpoint: str, timeout: float) -> Any:
            rpc = getattr(self.stub(endpoint, method), method)
            return rpc(request, timeout=timeout, metadata=metadata)

        endpoints = [o.endpoint for o in owners]
        return self._answer(owners, what, lambda: first_answer(endpoints, call, deadline))

    def forward_grouped(
        self,
        table: str,
        owners: Mapping[int, Sequence[Owner]],
        start: Callable[[str, list[int], float], Callable[[], T]],
        deadline: float,
        *,
        discard: Callable[[T], None] | None = None,
    ) -> list[Sent[int, T]]:
        """One call per member for the partitions it is the best remaining candidate of
        (``owners``: partition -> candidates), as :func:`viewsvc.wire.failover.grouped`."""
        routes = {p: [o.endpoint for o in candidates] for p, candidates in owners.items()}
        everyone = [o for candidates in owners.values() for o in candidates]
        return self._answer(
            everyone, repr(table), lambda: grouped(routes, start, deadline, discard=discard)
        )

    @staticmethod
    def _answer(owners: Sequence[Owner], what: str, read: Callable[[], T]) -> T:
        """``read()``, with its failures as ReadFailure; ``what`` names what was read (a
        partition of the table is named with it when one's candidates ran out)."""
        try:
            return read()
        except grpc.RpcError as exc:
            raise ReadFailure(exc.code(), exc.details() or str(exc.code())) from exc
        except Exhausted as exc:
            if exc.item is not None:
                what = f"partition {exc.item} of {what}"
            if not exc.failures:
                raise ReadFailure(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"{what}: the deadline passed before forwarding",
                ) from exc
            names = {o.endpoint: o.member_id for o in owners}
            tried = "; ".join(
                f"{names.get(endpoint, '?')} at {endpoint}: {error.details()}"
                for endpoint, error in exc.failures
            )
            raise ReadFailure(
                grpc.StatusCode.UNAVAILABLE, f"{what}: every replica failed: {tried}"
            ) from exc

    def close(self) -> None:
        self._channels.close()


def _too_far(table: str, partition: int, options: ReadOptions, lag: str) -> ReadFailure:
    return ReadFailure(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"no replica of partition {partition} of {table!r} is within "
        f"max_lag={options.max_lag} ({lag}); raise max_lag or retry later",
    )


def _none_running(table: str, partition: int, holders: list[Owner]) -> str:
    if not holders:
        return f"partition {partition} of {table!r} is not held by any live member; retry later"
    states = ", ".join(f"{o.member_id} ({o.kind}, {o.state})" for o in holders)
    return (
        f"partition {partition} of {table!r} has no running replica that may answer "
        f"(holders: {states}); retry later, or use consistency ANY to read a replica"
    )
