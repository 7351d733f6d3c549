"""Who may answer a read: the parsed read options, whether the local copy of a partition
satisfies them, and which other members may, best first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import grpc

from discovery import routing
from discovery.model import MemberInfo, Owner
from goka.local_table import HeldPartition, TableMeta
from viewsvc.v1 import table_pb2 as pb

__all__ = ["ReadFailure", "ReadOptions", "candidates", "local_ok", "parse_options"]


class ReadFailure(Exception):
    """Ends a call with a status code and a message that says what to do."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, why: str) -> ReadFailure:
    return ReadFailure(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {why}")


@dataclass(frozen=True)
class ReadOptions:
    consistency: Literal["any", "active"]
    max_lag: int
    min_offsets: Mapping[int, int]
    min_offsets_topic: str
    """Empty for the table topic."""

    def min_offset(self, partition: int) -> int | None:
        return self.min_offsets.get(partition)


DEFAULTS = ReadOptions(
    consistency="any", max_lag=0, min_offsets=MappingProxyType({}), min_offsets_topic=""
)
"""The options of a request that sets none."""


def parse_options(options: pb.ReadOptions, meta: TableMeta) -> ReadOptions:
    """Validates ``options`` against the table; raises ReadFailure (INVALID_ARGUMENT)."""
    if options.consistency not in (
        pb.CONSISTENCY_UNSPECIFIED,
        pb.CONSISTENCY_ANY,
        pb.CONSISTENCY_ACTIVE,
    ):
        raise invalid("options.consistency", f"unknown value {options.consistency}")
    if options.max_lag < 0:
        raise invalid("options.max_lag", f"must be >= 0 (0: no bound), got {options.max_lag}")
    for partition, offset in options.min_offsets.items():
        if not 0 <= partition < meta.partition_count:
            raise invalid(
                "options.min_offsets",
                f"partition {partition} is not a partition of {meta.name!r}, which has "
                f"{meta.partition_count}",
            )
        if offset < 0:
            raise invalid("options.min_offsets", f"offset {offset} of partition {partition} < 0")
    topic = options.min_offsets_topic
    return ReadOptions(
        consistency="active" if options.consistency == pb.CONSISTENCY_ACTIVE else "any",
        max_lag=options.max_lag,
        min_offsets=dict(options.min_offsets),
        min_offsets_topic="" if topic == meta.name else topic,
    )


def local_ok(held: HeldPartition | None, options: ReadOptions) -> bool:
    """Whether the local copy may answer (once it reached any min_offsets, see ``waits``)."""
    if held is None or held.state != "running":
        return False
    if (options.consistency == "active" or options.min_offsets_topic) and held.kind != "active":
        return False
    return not options.max_lag or 0 <= held.lag <= options.max_lag


def candidates(
    members: Sequence[MemberInfo],
    table: str,
    partition: int,
    options: ReadOptions,
    *,
    exclude: str,
) -> list[Owner]:
    """Other members that may answer, best first; raises ReadFailure when none may."""
    holders = [o for o in routing.owners(members, table, partition) if o.member_id != exclude]
    reachable = [o for o in holders if o.endpoint]
    running = [o for o in reachable if o.state == "running"]
    if options.consistency == "active" or options.min_offsets_topic:
        running = [o for o in running if o.kind == "active"]
    if not running:
        raise ReadFailure(grpc.StatusCode.UNAVAILABLE, _none_running(table, partition, holders))
    if options.max_lag:
        within = [o for o in running if 0 <= o.lag <= options.max_lag]
        if not within:
            least = min((o.lag for o in running if o.lag >= 0), default=None)
            raise ReadFailure(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"no replica of partition {partition} of {table!r} is within "
                f"max_lag={options.max_lag} (least lag: "
                f"{'unknown' if least is None else least}); raise max_lag or retry later",
            )
        running = within
    if options.consistency == "active":
        return running
    # the least-lagged first; the active owner first among equals
    return sorted(running, key=lambda o: (o.lag if o.lag >= 0 else 1 << 62, o.kind != "active"))


def _none_running(table: str, partition: int, holders: list[Owner]) -> str:
    if not holders:
        return f"partition {partition} of {table!r} is not held by any live member; retry later"
    states = ", ".join(f"{o.member_id} ({o.kind}, {o.state})" for o in holders)
    return (
        f"partition {partition} of {table!r} has no running replica that may answer "
        f"(holders: {states}); retry later, or use consistency ANY to read a replica"
    )
