"""Where each partition's replicas go, computed by every member without a coordinator.

View pods of one view group and the standby replicas of a processor group spread partitions
over the live members with a consistent-hash ring (uhashring's ketama ring: md5 points, 160
per member). Two properties make it usable without anyone in charge:

- every member computes the same placement from the same membership: the ring depends only on
  the member ids (sorted, so the order in which a member learned of the others does not
  matter) and md5, never on Python's per-process ``hash()`` seed;
- a member joining or leaving moves about 1/N of the placements: the ring order of the other
  members is unchanged, so only the partitions the newcomer takes (or the leaver held) move.

A partition's replicas are the first distinct members met walking the ring clockwise from the
partition's point (the md5 of its number), so the list order is meaningful: the first member
is the partition's primary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from uhashring import HashRing

from goka.errors import ConfigError

__all__ = ["placement", "standbys"]


def placement(
    members: Iterable[str], partitions: int | Iterable[int], replicas: int
) -> dict[int, list[str]]:
    """Place each partition on ``replicas`` distinct members, in ring order.

    ``partitions`` is a partition count (``range(n)``) or the partition numbers. With fewer
    members than ``replicas`` every partition gets all members; with no members, empty lists.
    Raises :class:`~goka.errors.ConfigError` for ``replicas < 1``, empty or duplicate member
    ids, and negative partitions.
    """
    ring, count = _ring(members), _check_replicas(replicas)
    return {p: _walk(ring, p, count) for p in _partitions(partitions)}


def standbys(
    members: Iterable[str],
    partitions: int | Iterable[int],
    replicas: int,
    owners: Mapping[int, str],
) -> dict[int, list[str]]:
    """Choose ``replicas`` standbys per partition: the first members in ring order that are not
    the partition's active owner (``owners`` maps partition -> member id).

    A partition without a known owner takes the first ``replicas`` members. Arguments are
    checked as in :func:`placement`.
    """
    ring, count = _ring(members), _check_replicas(replicas)
    result: dict[int, list[str]] = {}
    for p in _partitions(partitions):
        owner = owners.get(p)
        # the owner can be among the first count + 1 members at most once
        walk = _walk(ring, p, count + 1 if owner is not None else count)
        result[p] = [m for m in walk if m != owner][:count]
    return result


def _walk(ring: HashRing | None, partition: int, count: int) -> list[str]:
    """The first ``count`` distinct members clockwise from the partition's point."""
    if ring is None:
        return []
    return [node["nodename"] for node in ring.range(str(partition), size=count)]


def _ring(members: Iterable[str]) -> HashRing | None:
    if isinstance(members, str):
        raise ConfigError(f"members must be a collection of member ids, not the string {members!r}")
    ids = list(members)
    for member in ids:
        if not isinstance(member, str) or not member:
            raise ConfigError(f"member ids must be non-empty strings, got {member!r}")
    if len(set(ids)) != len(ids):
        duplicates = sorted({m for m in ids if ids.count(m) > 1})
        raise ConfigError(f"member ids must be unique; duplicated: {', '.join(duplicates)}")
    if not ids:
        return None
    # sorted: hash collisions between points are resolved by insertion order
    return HashRing(sorted(ids), hash_fn="ketama")


def _check_replicas(replicas: int) -> int:
    if not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"replicas must be an integer of at least 1, got {replicas!r}")
    return replicas


def _partitions(partitions: int | Iterable[int]) -> list[int]:
    if isinstance(partitions, int):
        if partitions < 0:
            raise ConfigError(f"the partition count must not be negative, got {partitions}")
        return list(range(partitions))
    numbers = set(partitions)
    for p in numbers:
        if not isinstance(p, int) or p < 0:
            raise ConfigError(f"partition numbers must be integers of at least 0, got {p!r}")
    return sorted(numbers)
