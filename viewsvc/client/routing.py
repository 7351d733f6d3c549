"""Which nodes the smart client sends a read to, in order: pure functions of the members.

A read goes first to the eligible holders of the key's partition (see :func:`holders`), then to
the fallback nodes (:func:`fallbacks`): any node forwards a read to a holder it knows, and
answers with the right error (NOT_FOUND, UNAVAILABLE, ...) when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, get_args

from discovery import MemberInfo
from discovery.routing import owners, table_info
from goka.errors import ConfigError
from goka.partitioner import get_partitioner
from viewsvc.v1 import table_pb2

__all__ = [
    "Consistency",
    "fallbacks",
    "holders",
    "key_routes",
    "partition_of",
    "read_options",
    "validate_table",
]

Consistency = Literal["any", "active"]
"""``"any"``: any running replica, least lag first; ``"active"``: only the active owner."""

_CONSISTENCY = {"any": table_pb2.CONSISTENCY_ANY, "active": table_pb2.CONSISTENCY_ACTIVE}
_UNKNOWN_LAG = 1 << 62


def validate_table(table: object) -> str:
    if not isinstance(table, str) or not table:
        raise ConfigError(f"table must be a non-empty table topic name, got {table!r}")
    return table


def read_options(
    consistency: str,
    max_lag: int,
    min_offsets: Mapping[int, int] | None,
    min_offsets_topic: str,
) -> table_pb2.ReadOptions:
    """The request's ReadOptions; raises ConfigError for a bad argument."""
    if consistency not in _CONSISTENCY:
        valid = " or ".join(repr(c) for c in get_args(Consistency))
        raise ConfigError(f"consistency must be {valid}, got {consistency!r}")
    if type(max_lag) is not int or max_lag < 0:
        raise ConfigError(f"max_lag must be an int >= 0 (0: no bound), got {max_lag!r}")
    offsets = dict(min_offsets or {})
    for partition, offset in offsets.items():
        if type(partition) is not int or partition < 0 or type(offset) is not int or offset < 0:
            raise ConfigError(
                f"min_offsets maps partitions to offsets (ints >= 0), got {partition!r}: "
                f"{offset!r}; pass the {{partition: offset}} that Emitter.emit_sync returned"
            )
    if not isinstance(min_offsets_topic, str):
        raise ConfigError(f"min_offsets_topic must be a topic name, got {min_offsets_topic!r}")
    return table_pb2.ReadOptions(
        consistency=_CONSISTENCY[consistency],
        max_lag=max_lag,
        min_offsets=offsets,
        min_offsets_topic=min_offsets_topic,
    )


def partition_of(members: Iterable[MemberInfo], table: str, key: bytes) -> int | None:
    """The key's partition by the table's announced partitioner, or None if nobody announces
    the table (or with a partitioner this client does not know: a node will know better)."""
    info = table_info(members, table)
    if info is None:
        return None
    try:
        return get_partitioner(info.partitioner)(key, info.partition_count)
    except ConfigError:
        return None


def holders(
    members: Sequence[MemberInfo],
    table: str,
    partition: int,
    options: table_pb2.ReadOptions,
) -> list[str]:
    """Endpoints of the members that may answer a read of ``partition``, best first.

    Only running holders with an endpoint qualify; with CONSISTENCY_ACTIVE (or min_offsets of
    an input topic, which only the active owner knows) only the active owner. Otherwise the
    least-lagged comes first, ties in ``owners()`` order (the active owner first). A
    ``max_lag`` bound drops holders further behind, and those whose lag is unknown.
    """
    active_only = (
        options.consistency == table_pb2.CONSISTENCY_ACTIVE or options.min_offsets_topic != ""
    )
    eligible = [
        owner
        for owner in owners(members, table, partition)
        if owner.endpoint
        and owner.state == "running"
        and (owner.kind == "active" or not active_only)
        and (options.max_lag == 0 or 0 <= owner.lag <= options.max_lag)
    ]
    eligible.sort(key=lambda o: o.lag if o.lag >= 0 else _UNKNOWN_LAG)
    return _unique(owner.endpoint for owner in eligible)


def fallbacks(targets: Sequence[str], members: Sequence[MemberInfo]) -> list[str]:
    """Nodes that forward any read: the given targets, then routers, then the other members."""
    routers = [m.endpoint for m in members if m.role == "router" and m.endpoint]
    others = [m.endpoint for m in members if m.role != "router" and m.endpoint]
    return _unique([*targets, *routers, *others])


def key_routes(
    members: Sequence[MemberInfo],
    table: str,
    keys: Sequence[bytes],
    options: table_pb2.ReadOptions,
    targets: Sequence[str],
) -> list[list[str]]:
    """Per key, the nodes to try in order: its partition's eligible holders, then the
    fallback nodes."""
    fallback = fallbacks(targets, members)
    by_partition: dict[int, list[str]] = {}
    routes = []
    for key in keys:
        partition = partition_of(members, table, key)
        if partition is None:
            routes.append(fallback)
            continue
        if partition not in by_partition:
            direct = holders(members, table, partition, options)
            by_partition[partition] = _unique([*direct, *fallback])
        routes.append(by_partition[partition])
    return routes


def _unique(endpoints: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(endpoints))
