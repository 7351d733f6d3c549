"""Which nodes the smart client sends a read to, in order: pure functions of the members.

A read goes first to the eligible holders of the key's partition (see :func:`holders`), then to
the fallback nodes (:func:`fallbacks`): any node forwards a read to a holder it knows, and
answers with the right error (NOT_FOUND, UNAVAILABLE, ...) when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from discovery import MemberInfo
from discovery.routing import owners, table_info
from goka.errors import ConfigError
from goka.partitioner import get_partitioner
from viewsvc.wire.read_options import ReadOptions, eligible

__all__ = ["fallbacks", "holders", "key_routes", "partition_of", "validate_table"]


def validate_table(table: object) -> str:
    if not isinstance(table, str) or not table:
        raise ConfigError(f"table must be a non-empty table topic name, got {table!r}")
    return table


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
    members: Sequence[MemberInfo], table: str, partition: int, options: ReadOptions
) -> list[str]:
    """Endpoints of the members that may answer a read of ``partition``, best first (the
    rule is :func:`viewsvc.wire.read_options.eligible`)."""
    return _unique(owner.endpoint for owner in eligible(owners(members, table, partition), options))


def fallbacks(targets: Sequence[str], members: Sequence[MemberInfo]) -> list[str]:
    """Nodes that forward any read: the given targets, then routers, then the other members."""
    routers = [m.endpoint for m in members if m.role == "router" and m.endpoint]
    others = [m.endpoint for m in members if m.role != "router" and m.endpoint]
    return _unique([*targets, *routers, *others])


def key_routes(
    members: Sequence[MemberInfo],
    table: str,
    keys: Sequence[bytes],
    options: ReadOptions,
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
