"""Read options, the one conversion between the call arguments, the wire message
(``viewsvc.v1.ReadOptions``) and what both ends decide with, and the rule of which holders
of a partition may answer a read, best first.

The smart client applies the rule to choose whom to call; a node applies it to choose whom
to forward to, so both prefer the same replicas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from discovery.model import Owner
from goka.errors import ConfigError
from viewsvc.v1 import table_pb2 as pb
from viewsvc.wire.errors import InvalidArgument

__all__ = ["DEFAULTS", "Consistency", "ReadOptions", "eligible", "running"]

Consistency = Literal["any", "active"]
"""``"any"``: any running replica, least lag first; ``"active"``: only the active owner."""

_TO_PB = {"any": pb.CONSISTENCY_ANY, "active": pb.CONSISTENCY_ACTIVE}
_UNKNOWN_LAG = 1 << 62


@dataclass(frozen=True)
class ReadOptions:
    """Which replica may answer a read, and what it must have applied first.

    ``min_offsets`` (partition -> offset) makes the answering replica wait until it applied
    them: offsets of the table topic, or of ``min_offsets_topic`` (an input topic of the
    processor, which only the active owner knows).
    """

    consistency: Consistency = "any"
    max_lag: int = 0
    """0: no bound."""
    min_offsets: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    min_offsets_topic: str = ""
    """Empty for the table topic."""

    @property
    def active_only(self) -> bool:
        """Only the active owner may answer."""
        return self.consistency == "active" or bool(self.min_offsets_topic)

    def min_offset(self, partition: int) -> int | None:
        return self.min_offsets.get(partition)

    @classmethod
    def from_arguments(
        cls,
        consistency: object,
        max_lag: object,
        min_offsets: Mapping[Any, Any] | None,
        min_offsets_topic: object,
    ) -> ReadOptions:
        """The options of a client call; raises ConfigError naming a bad argument."""
        if consistency not in _TO_PB:
            valid = " or ".join(repr(c) for c in get_args(Consistency))
            raise ConfigError(f"consistency must be {valid}, got {consistency!r}")
        if type(max_lag) is not int or max_lag < 0:
            raise ConfigError(f"max_lag must be an int >= 0 (0: no bound), got {max_lag!r}")
        offsets: dict[int, int] = {}
        for partition, offset in (min_offsets or {}).items():
            if type(partition) is not int or partition < 0 or type(offset) is not int or offset < 0:
                raise ConfigError(
                    f"min_offsets maps partitions to offsets (ints >= 0), got {partition!r}: "
                    f"{offset!r}; pass the {{partition: offset}} that Emitter.emit_sync returned"
                )
            offsets[partition] = offset
        if not isinstance(min_offsets_topic, str):
            raise ConfigError(f"min_offsets_topic must be a topic name, got {min_offsets_topic!r}")
        chosen: Consistency = "active" if consistency == "active" else "any"
        return cls(chosen, max_lag, MappingProxyType(offsets), min_offsets_topic)

    @classmethod
    def from_pb(cls, options: pb.ReadOptions, table: str, partition_count: int) -> ReadOptions:
        """The options of a request for ``table``; raises InvalidArgument."""
        if options.consistency not in (
            pb.CONSISTENCY_UNSPECIFIED,
            pb.CONSISTENCY_ANY,
            pb.CONSISTENCY_ACTIVE,
        ):
            raise InvalidArgument("options.consistency", f"unknown value {options.consistency}")
        if options.max_lag < 0:
            raise InvalidArgument(
                "options.max_lag", f"must be >= 0 (0: no bound), got {options.max_lag}"
            )
        for partition, offset in options.min_offsets.items():
            if not 0 <= partition < partition_count:
                raise InvalidArgument(
                    "options.min_offsets",
                    f"partition {partition} is not a partition of {table!r}, which has "
                    f"{partition_count}",
                )
            if offset < 0:
                raise InvalidArgument(
                    "options.min_offsets", f"offset {offset} of partition {partition} < 0"
                )
        topic = options.min_offsets_topic
        return cls(
            consistency="active" if options.consistency == pb.CONSISTENCY_ACTIVE else "any",
            max_lag=options.max_lag,
            min_offsets=MappingProxyType(dict(options.min_offsets)),
            min_offsets_topic="" if topic == table else topic,
        )

    def to_pb(self) -> pb.ReadOptions:
        return pb.ReadOptions(
            consistency=_TO_PB[self.consistency],
            max_lag=self.max_lag,
            min_offsets=self.min_offsets,
            min_offsets_topic=self.min_offsets_topic,
        )


DEFAULTS = ReadOptions()
"""The options of a request that sets none."""


def running(holders: Iterable[Owner], options: ReadOptions) -> list[Owner]:
    """The holders that may answer but for the lag bound: running, with an endpoint, and
    only the active owner with ``active_only``."""
    return [
        owner
        for owner in holders
        if owner.endpoint
        and owner.state == "running"
        and (owner.kind == "active" or not options.active_only)
    ]


def eligible(holders: Iterable[Owner], options: ReadOptions) -> list[Owner]:
    """The holders that may answer a read, best first: :func:`running` ones within the
    ``max_lag`` bound (which drops those whose lag is unknown). The least-lagged comes
    first, ties in the given order (``routing.owners`` puts the active owner first)."""
    chosen = [
        owner
        for owner in running(holders, options)
        if options.max_lag == 0 or 0 <= owner.lag <= options.max_lag
    ]
    chosen.sort(key=lambda o: o.lag if o.lag >= 0 else _UNKNOWN_LAG)
    return chosen
