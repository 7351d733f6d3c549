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

A processor's standbys (:func:`standbys`) go first where the ``range`` assignor of its
consumer group will move the partition when a member leaves (:func:`heirs`), and fill up from
the ring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from uhashring import HashRing

from goka.errors import ConfigError

__all__ = ["heirs", "placement", "range_assignment", "range_order", "standbys"]


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
    """Choose ``replicas`` standbys per partition, none of them its active owner (``owners``
    maps partition -> member id): first the partition's likely next owners, then ring order.

    Neither group protocol lets a client steer an assignment (librdkafka runs the classic
    ``range`` assignor itself; KIP-848's is the broker's), so the standbys go where the next
    owner will be. Both ``range`` assignors give contiguous ranges to the members in one order,
    so when ``owners`` is such an assignment of ``range(partitions)`` the order shows, and
    :func:`heirs` says who takes a partition when a member leaves: its owner leaving first,
    then each other member. A partition whose owners do not form a range assignment (mid
    rebalance, another assignor) or that has no known owner takes the members in ring order.
    Arguments are checked as in :func:`placement`.
    """
    ring, count = _ring(members), _check_replicas(replicas)
    numbers = _partitions(partitions)
    known = set() if ring is None else set(ring.get_nodes())
    order = range_order(owners, len(numbers)) if numbers == list(range(len(numbers))) else None
    result: dict[int, list[str]] = {}
    for p in numbers:
        owner = owners.get(p)
        likely = [m for m in heirs(order, len(numbers), p) if m in known] if order else []
        walk = _walk(ring, p, count + 1 + len(likely))  # enough past the owner and the heirs
        chosen = [m for m in dict.fromkeys(likely + walk) if m != owner]
        result[p] = chosen[:count]
    return result


def range_assignment(order: Sequence[str], partitions: int) -> dict[int, str]:
    """What a ``range`` assignor gives ``order``'s members (in that order) of one topic: the
    first ``partitions % len(order)`` members one partition more than the others."""
    if not order:
        return {}
    quota, extra = divmod(partitions, len(order))
    assignment: dict[int, str] = {}
    start = 0
    for i, member in enumerate(order):
        end = start + quota + (1 if i < extra else 0)
        assignment.update(dict.fromkeys(range(start, end), member))
        start = end
    return assignment


def range_order(owners: Mapping[int, str], partitions: int) -> list[str] | None:
    """The member order behind ``owners`` if it is a range assignment of ``range(partitions)``
    to the members it names, else None."""
    first: dict[str, int] = {}
    for p in sorted(owners):
        first.setdefault(owners[p], p)
    order = sorted(first, key=first.__getitem__)
    if partitions == 0 or range_assignment(order, partitions) != dict(owners):
        return None
    return order


def heirs(order: Sequence[str], partitions: int, partition: int) -> list[str]:
    """Who a ``range`` assignor over ``order`` would give ``partition`` (of ``partitions``) to
    when one member leaves: its owner leaving first, then each other member in order;
    distinct, never the partition's owner now."""
    owner = range_assignment(order, partitions).get(partition)
    leavers = [owner] + [m for m in order if m != owner] if owner is not None else list(order)
    found: list[str] = []
    for leaver in leavers:
        heir = range_assignment([m for m in order if m != leaver], partitions).get(partition)
        if heir is not None and heir != owner and heir not in found:
            found.append(heir)
    return found


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
