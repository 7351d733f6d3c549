"""Key-to-partition functions: the one place that decides which partition a key lives in.

A :data:`Partitioner` maps the *encoded* key bytes and the topic's partition count to a
partition number. Emitter, processor, view, router and client all use the same function, so a
key is looked up in the partition the producer wrote it to.

- :func:`murmur2` is the Java Kafka client's default (``Utils.toPositive(Utils.murmur2(key)) %
  n``) and librdkafka's ``partitioner=murmur2_random`` for non-null keys. It is goka's default.
- :func:`fnv1a` is Sarama's ``NewHashPartitioner``, the default of Go's Goka, and equals
  librdkafka's ``partitioner=fnv1a_random`` for non-null keys.

Messages without a key (a null key) are not partitioned by these functions; callers decide
where they go. An empty key ``b""`` is a key like any other.

Both functions run once per emitted message and once per key read over gRPC. MurmurHash2 comes
compiled from the ``murmurhash2`` package (about ten times the speed of the best pure-Python
loop); FNV-1a's loop is written for speed in pure Python. ``tests/unit/test_partitioner.py``
checks both against published vectors and a transcription of Kafka's Java code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, get_args

from murmurhash2 import murmurhash2 as _murmurhash2

from goka.errors import ConfigError

__all__ = [
    "Partitioner",
    "PartitionerName",
    "fnv1a",
    "fnv1a_hash",
    "get_partitioner",
    "murmur2",
    "murmur2_hash",
]

Partitioner = Callable[[bytes, int], int]
"""``(encoded key bytes, number of partitions) -> partition`` in ``range(number of partitions)``."""

PartitionerName = Literal["murmur2", "fnv1a"]
"""The partitioner names a group declares and announces."""

_MURMUR2_SEED: Final = 0x9747B28C


def murmur2_hash(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (MurmurHash2, seed ``0x9747b28c``) of ``data``.

    Returns the 32-bit result as an **unsigned** int in ``range(2**32)``; Java's ``int`` value
    is the same bits read as signed (subtract ``2**32`` when the result is ``>= 2**31``).
    Equals librdkafka's ``rd_murmur2``.
    """
    if type(data) is not bytes:
        data = bytes(data)
    return _murmurhash2(data, _MURMUR2_SEED)


def fnv1a_hash(data: bytes) -> int:
    """32-bit FNV-1a of ``data`` (Go's ``hash/fnv.New32a().Sum32()``), unsigned."""
    h = 0x811C9DC5
    if len(data) <= 16:
        # Short keys: masking once at the end is faster; the low 32 bits of the product only
        # depend on the low 32 bits of the factors. Longer keys would grow a big int.
        for byte in data:
            h = (h ^ byte) * 0x01000193
        return h & 0xFFFFFFFF
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def _bad_count(num_partitions: object) -> ConfigError:
    return ConfigError(
        f"num_partitions must be an int >= 1, got {num_partitions!r}: "
        "pass the partition count of the topic"
    )


def murmur2(key: bytes, num_partitions: int) -> int:
    """Java Kafka / librdkafka ``murmur2_random`` partition of a non-null ``key``.

    ``(murmur2_hash(key) & 0x7fffffff) % num_partitions``. Raises :class:`ConfigError` when
    ``num_partitions`` is not an int >= 1.
    """
    if type(num_partitions) is not int or num_partitions < 1:
        raise _bad_count(num_partitions)
    if type(key) is not bytes:
        key = bytes(key)
    return (_murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % num_partitions


def fnv1a(key: bytes, num_partitions: int) -> int:
    """Sarama's ``NewHashPartitioner`` partition of a non-null ``key`` (Go Goka's default).

    Sarama computes ``p := int32(fnv1a32(key)) % n; if p < 0 { p = -p }`` with Go's
    truncating ``%``, which is ``abs(int32(hash)) % n`` (also for ``hash == 2**31``). Raises
    :class:`ConfigError` when ``num_partitions`` is not an int >= 1.
    """
    if type(num_partitions) is not int or num_partitions < 1:
        raise _bad_count(num_partitions)
    h = fnv1a_hash(key)
    if h & 0x80000000:
        h = 0x100000000 - h  # abs() of the hash read as int32
    return h % num_partitions


_PARTITIONERS: Final[dict[str, Partitioner]] = {"murmur2": murmur2, "fnv1a": fnv1a}


def get_partitioner(name: str) -> Partitioner:
    """The partitioner called ``name`` (a :data:`PartitionerName`).

    Raises :class:`ConfigError` for an unknown name.
    """
    try:
        return _PARTITIONERS[name]
    except (KeyError, TypeError) as exc:
        valid = ", ".join(repr(n) for n in get_args(PartitionerName))
        raise ConfigError(
            f"unknown partitioner {name!r}: use one of {valid} "
            "('murmur2' matches the Java client, 'fnv1a' matches Sarama and Go Goka)"
        ) from exc
