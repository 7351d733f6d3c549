"""Unit tests for goka.partitioner, against vectors computed by other implementations.

Where the expected values come from:

- FNV-1a 32 hashes: the FNV reference test suite (Landon Curt Noll's ``test_fnv.c``: ``""``,
  ``"a"`` ... ``"foobar"``) and Go's ``hash/fnv`` ``golden32a`` table (``"ab"``, ``"abc"``).
- ``abs(int32(fnv1a32(key)))``: librdkafka ``src/rdfnv1a.c`` ``unittest_fnv1a``
  (``golang_hashfnv_results``, "acquired via play.golang.org").
- murmur2 hashes: Apache Kafka ``UtilsTest.testMurmur2`` (Java ``Utils.murmur2``, signed
  ints) and librdkafka ``src/rdmurmur2.c`` ``unittest_murmur2`` (``java_murmur2_results``).
- Sarama partitions: ``data/fnv1a_sarama_vectors.json``, 920 ``(key, partitions, hash,
  partition)`` rows written by ``data/gen_fnv1a_sarama_vectors.c``, an independent C
  implementation of Sarama's ``hashPartitioner.Partition`` (``int32(hash) % n`` with C99's
  truncating ``%`` on ``int32_t``, then negate if negative). Regenerate with::

      cc -std=c99 -O2 -Wall -o /tmp/gen tests/unit/data/gen_fnv1a_sarama_vectors.c
      /tmp/gen > tests/unit/data/fnv1a_sarama_vectors.json

  523 of the rows have a hash with the top bit set (the negative path), and 20 use a key
  whose hash is exactly ``0x80000000`` (``INT32_MIN``). A naive Python ``abs(h % n)`` with
  Python's floor modulo gets 374 of them wrong.

(kafkajs' *legacy* murmur2 test data is deliberately not used: that partitioner is not
Java-compatible, and its values differ from Kafka's.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from goka import partitioner
from goka.errors import ConfigError
from goka.partitioner import (
    PartitionerName,
    fnv1a,
    fnv1a_hash,
    get_partitioner,
    murmur2,
    murmur2_hash,
)

DATA = Path(__file__).parent / "data"


def as_int32(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


# --- FNV-1a ---------------------------------------------------------------------------------

FNV1A32_VECTORS = [
    (b"", 0x811C9DC5),
    (b"a", 0xE40C292C),
    (b"b", 0xE70C2DE5),
    (b"c", 0xE60C2C52),
    (b"d", 0xE10C2473),
    (b"e", 0xE00C22E0),
    (b"f", 0xE30C2799),
    (b"fo", 0x6222E842),
    (b"foo", 0xA9F37ED7),
    (b"foob", 0x3F5076EF),
    (b"fooba", 0x39AAA18A),
    (b"foobar", 0xBF9CF968),
    (b"ab", 0x4D2505CA),
    (b"abc", 0x1A47E90B),
]


@pytest.mark.parametrize(("data", "expected"), FNV1A32_VECTORS)
def test_fnv1a_hash_published_vectors(data: bytes, expected: int) -> None:
    assert fnv1a_hash(data) == expected


_UNALIGNED = b"PreAmbleWillBeRemoved,ThePrePartThatIs"
LIBRDKAFKA_FNV1A_ABS = [
    (b"kafka", 0xD33C4E1),
    (b"giberish123456789", 0x77A58295),
    (b"1234", 0x23BDD03),
    (b"234", 0x2DEA3CD2),
    (b"34", 0x740FA83E),
    (b"4", 0x310CA263),
    (_UNALIGNED, 0x65CBD69C),
    (_UNALIGNED[1:], 0x6E49C79A),
    (_UNALIGNED[2:], 0x69EED356),
    (_UNALIGNED[3:], 0x6ABCC023),
    (b"", 0x7EE3623B),
]


@pytest.mark.parametrize(("data", "expected"), LIBRDKAFKA_FNV1A_ABS)
def test_fnv1a_hash_librdkafka_vectors(data: bytes, expected: int) -> None:
    assert abs(as_int32(fnv1a_hash(data))) == expected


def test_fnv1a_hash_long_keys_match_per_byte_masking() -> None:
    # fnv1a_hash switches strategy above 16 bytes; both must agree with the textbook loop.
    for length in range(0, 70):
        data = bytes((i * 37 + 11) % 256 for i in range(length))
        h = 0x811C9DC5
        for byte in data:
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
        assert fnv1a_hash(data) == h


def load_sarama_vectors() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads((DATA / "fnv1a_sarama_vectors.json").read_text())
    return rows


def test_sarama_vectors_cover_the_negative_path() -> None:
    rows = load_sarama_vectors()
    assert len(rows) >= 300
    hashes = [row["hash"] for row in rows]
    assert sum(1 for h in hashes if isinstance(h, int) and h >= 2**31) >= 100
    assert 2**31 in hashes


def test_fnv1a_matches_sarama_vectors() -> None:
    mismatches = []
    for row in load_sarama_vectors():
        key = bytes.fromhex(str(row["key"]))
        n = row["partitions"]
        assert isinstance(n, int)
        got = (fnv1a_hash(key), fnv1a(key, n))
        if got != (row["hash"], row["partition"]):
            mismatches.append((row, got))
    assert mismatches == []


def test_fnv1a_int32_min_hash() -> None:
    key = bytes.fromhex("676f6b6148506a27c4")  # hashes to 0x80000000, see the generator
    assert fnv1a_hash(key) == 0x80000000
    assert fnv1a(key, 3) == 2**31 % 3 == 2
    assert fnv1a(key, 2**31 - 1) == 1


def test_fnv1a_negative_hash_uses_truncated_modulo() -> None:
    # "a" hashes to 0xe40c292c, int32 -468965076: Go's -468965076 % 10 == -6 -> 6, whereas
    # Python's floor modulo gives 4.
    assert as_int32(fnv1a_hash(b"a")) == -468965076
    assert -468965076 % 10 == 4
    assert fnv1a(b"a", 10) == 6


# --- murmur2 --------------------------------------------------------------------------------

KAFKA_UTILS_TEST_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]

LIBRDKAFKA_MURMUR2 = [
    (b"kafka", 0xD067CF64),
    (b"giberish123456789", 0x8F552B0C),
    (b"1234", 0x9FC97B14),
    (b"234", 0xE7C009CA),
    (b"34", 0x873930DA),
    (b"4", 0x5A4B5CA1),
    (_UNALIGNED, 0x78424F1C),
    (_UNALIGNED[1:], 0x4A62B377),
    (_UNALIGNED[2:], 0xE0E4E09E),
    (_UNALIGNED[3:], 0x62B8B43F),
    (b"", 0x106E08D9),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST_MURMUR2)
def test_murmur2_hash_kafka_java_vectors(data: bytes, expected: int) -> None:
    assert as_int32(murmur2_hash(data)) == expected


@pytest.mark.parametrize(("data", "expected"), LIBRDKAFKA_MURMUR2)
def test_murmur2_hash_librdkafka_vectors(data: bytes, expected: int) -> None:
    assert murmur2_hash(data) == expected


def test_murmur2_hash_is_unsigned_32_bit() -> None:
    for length in range(0, 80):
        h = murmur2_hash(bytes(range(length)))
        assert 0 <= h < 2**32


def test_murmur2_partition_is_java_to_positive_modulo() -> None:
    # Java: toPositive(-790332482) = 1357151166; 1357151166 % 50 == 16
    assert murmur2(b"foobar", 50) == 16
    for key, signed in KAFKA_UTILS_TEST_MURMUR2:
        for n in (1, 3, 8, 24, 100, 2**31 - 1):
            assert murmur2(key, n) == (signed & 0x7FFFFFFF) % n


def java_murmur2(data: bytes) -> int:
    """A line-by-line transcription of Java's ``Utils.murmur2``, unsigned result."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(length // 4):
        i4 = i * 4
        k = data[i4] | data[i4 + 1] << 8 | data[i4 + 2] << 16 | data[i4 + 3] << 24
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def test_murmur2_hash_matches_transcription_for_all_lengths() -> None:
    # covers every tail length, short and long keys
    for length in [*range(0, 100), 255, 256, 1024]:
        data = bytes((i * 131 + length) % 256 for i in range(length))
        assert murmur2_hash(data) == java_murmur2(data), length


def test_bytes_like_keys_hash_like_bytes() -> None:
    key = b"user-42"
    for same in (bytearray(key), memoryview(key)):
        assert murmur2_hash(same) == murmur2_hash(key)  # type: ignore[arg-type]
        assert murmur2(same, 7) == murmur2(key, 7)  # type: ignore[arg-type]
        assert fnv1a(same, 7) == fnv1a(key, 7)  # type: ignore[arg-type]


def test_long_keys() -> None:
    key = bytes(range(256)) * 4
    assert 0 <= murmur2(key, 7) < 7
    assert 0 <= fnv1a(key, 7) < 7


# --- arguments and lookup -------------------------------------------------------------------


@pytest.mark.parametrize("function", [murmur2, fnv1a])
@pytest.mark.parametrize("bad", [0, -1, True, 2.0, None, "3"])
def test_bad_partition_count(function: partitioner.Partitioner, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"num_partitions must be an int >= 1, got"):
        function(b"key", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("function", [murmur2, fnv1a])
def test_single_partition_is_always_zero(function: partitioner.Partitioner) -> None:
    assert {function(bytes([i]) * i, 1) for i in range(50)} == {0}


def test_get_partitioner() -> None:
    assert get_partitioner("murmur2") is murmur2
    assert get_partitioner("fnv1a") is fnv1a
    assert set(get_args(PartitionerName)) == {"murmur2", "fnv1a"}


@pytest.mark.parametrize("name", ["crc32", "Murmur2", "", "murmur2_random"])
def test_get_partitioner_unknown(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_partitioner(name)
    message = str(info.value)
    assert repr(name) in message
    assert "'murmur2'" in message and "'fnv1a'" in message
    assert isinstance(info.value.__cause__, KeyError)


def test_exported_names() -> None:
    assert sorted(partitioner.__all__) == [
        "Partitioner",
        "PartitionerName",
        "fnv1a",
        "fnv1a_hash",
        "get_partitioner",
        "murmur2",
        "murmur2_hash",
    ]
