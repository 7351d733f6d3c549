"""The pure pieces of TableService.Scan: bounds, page tokens, merge and batches."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from viewsvc.wire.errors import InvalidArgument
from viewsvc.wire.scan_pages import (
    Row,
    batches,
    decode_page_token,
    encode_page_token,
    merge,
    request_fingerprint,
    scan_bounds,
)

KEYS = [
    b"",
    b"\x00",
    b"a",
    b"ab",
    b"ab\x00",
    b"ab\xff",
    b"abc",
    b"ac",
    b"b",
    b"\xff",
    b"\xff\xff",
    b"\xff\xff\x00",
    b"\xff\xff\xff\x01",
]


def selected(low: bytes | None, high: bytes | None) -> list[bytes]:
    return [k for k in KEYS if (low is None or k >= low) and (high is None or k < high)]


def expected(start: bytes, end: bytes, prefix: bytes, after: bytes | None) -> list[bytes]:
    """The definition, key by key."""
    return [
        k
        for k in KEYS
        if (not start or k >= start)
        and (not end or k < end)
        and k.startswith(prefix)
        and (after is None or k > after)
    ]


@pytest.mark.parametrize(
    ("start", "end", "prefix", "after", "bounds"),
    [
        (b"", b"", b"", None, (None, None)),
        (b"a", b"b", b"", None, (b"a", b"b")),
        (b"", b"", b"ab", None, (b"ab", b"ac")),
        (b"", b"", b"ab\xff", None, (b"ab\xff", b"ac")),
        (b"", b"", b"\xff", None, (b"\xff", None)),
        (b"", b"", b"\xff\xff", None, (b"\xff\xff", None)),
        (b"aa", b"abc", b"ab", None, (b"ab", b"abc")),
        (b"abb", b"", b"ab", None, (b"abb", b"ac")),
        (b"", b"", b"", b"ab", (b"ab\x00", None)),
        (b"", b"", b"ab", b"ab", (b"ab\x00", b"ac")),
        (b"a", b"b", b"", b"", (b"a", b"b")),
        (b"", b"", b"", b"", (b"\x00", None)),
        (b"", b"", b"\xff", b"\xff\xff", (b"\xff\xff\x00", None)),
        (b"", b"ab", b"b", None, (b"b", b"ab")),  # disjoint: an empty range
    ],
)
def test_scan_bounds(
    start: bytes,
    end: bytes,
    prefix: bytes,
    after: bytes | None,
    bounds: tuple[bytes | None, bytes | None],
) -> None:
    assert scan_bounds(start, end, prefix, after) == bounds
    assert selected(*bounds) == expected(start, end, prefix, after)


def test_end_before_start_names_the_field() -> None:
    with pytest.raises(InvalidArgument, match="end b'a' is before start b'b'") as info:
        scan_bounds(b"b", b"a", b"", None)
    assert info.value.field == "end"
    assert scan_bounds(b"a", b"a", b"", None) == (b"a", b"a")  # empty, not wrong


FINGERPRINT = request_fingerprint(b"a", b"z", b"", [0, 1])


@pytest.mark.parametrize("last_key", [b"", b"k", b"\x00\xff" * 50, "ключ".encode()])
def test_page_token_round_trip(last_key: bytes) -> None:
    token = encode_page_token("t", FINGERPRINT, last_key)
    assert "=" not in token
    assert token == token.encode("ascii").decode("ascii")
    assert all(c.isalnum() or c in "-_" for c in token)
    assert decode_page_token("t", FINGERPRINT, token) == last_key


def test_fingerprint_ignores_partition_order_and_duplicates() -> None:
    assert request_fingerprint(b"a", b"z", b"", [1, 0, 1]) == FINGERPRINT
    different = [
        request_fingerprint(b"a", b"z", b"", [0]),
        request_fingerprint(b"a", b"z", b"", []),
        request_fingerprint(b"", b"az", b"", [0, 1]),  # no ambiguity between fields
        request_fingerprint(b"az", b"", b"", [0, 1]),
        request_fingerprint(b"a", b"z", b"p", [0, 1]),
    ]
    assert len({FINGERPRINT, *different}) == 6


def raw_token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "not a token this service issued"),
        ("not base64!", "not a token this service issued"),
        ("abcde", "not a token this service issued"),  # a length no encoder produces
        ("AA", "not a token this service issued"),  # too short
        (raw_token(b"\x07" + bytes(8) + b"k"), "page_token has version 7"),
        (encode_page_token("other", FINGERPRINT, b"k"), "belongs to another scan"),
        (
            encode_page_token("t", request_fingerprint(b"a", b"", b"", [0, 1]), b"k"),
            "belongs to another scan",
        ),
        (encode_page_token("t", FINGERPRINT, b"k")[:-1] + "+", "not a token"),
    ],
)
def test_bad_page_tokens_are_rejected(token: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        decode_page_token("t", FINGERPRINT, token)
    assert info.value.field == "page_token"
    assert "page_token" in str(info.value)


def partition(number: int, *keys: bytes) -> Iterator[Row]:
    return iter([(key, key.upper(), number) for key in keys])


def test_merge_orders_interleaved_partitions() -> None:
    rows = list(
        merge(
            [
                partition(0, b"a", b"d", b"e", b"z"),
                partition(1, b"b", b"c", b"f"),
                partition(2),
                partition(3, b"\x00", b"y", b"\xff"),
            ]
        )
    )
    assert [key for key, _, _ in rows] == [
        b"\x00",
        b"a",
        b"b",
        b"c",
        b"d",
        b"e",
        b"f",
        b"y",
        b"z",
        b"\xff",
    ]
    assert rows[1] == (b"a", b"A", 0)
    assert [p for _, _, p in rows] == [3, 0, 1, 1, 0, 0, 1, 3, 0, 3]
    assert list(merge([])) == []


def rows_of(*sizes: int) -> list[Row]:
    return [(b"k%d" % i, b"v" * (size - len(b"k%d" % i)), 0) for i, size in enumerate(sizes)]


def test_batches_limit_rows() -> None:
    rows = rows_of(*[10] * 7)
    chunks = list(batches(iter(rows), max_rows=3, max_bytes=1000))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [row for chunk in chunks for row in chunk] == rows


def test_batches_limit_bytes_but_never_leave_a_row_behind() -> None:
    rows = rows_of(10, 10, 10, 50, 10, 30)
    chunks = list(batches(iter(rows), max_rows=100, max_bytes=30))
    assert [[len(k) + len(v) for k, v, _ in c] for c in chunks] == [[10, 10, 10], [50], [10], [30]]


def test_batches_are_lazy_and_checked() -> None:
    def endless() -> Iterator[Row]:
        while True:
            yield (b"k", b"v", 0)

    assert len(next(batches(endless(), max_rows=2, max_bytes=10))) == 2
    assert list(batches(iter([]), max_rows=1, max_bytes=1)) == []
    with pytest.raises(ValueError, match="must be positive"):
        next(batches(iter([]), max_rows=0, max_bytes=10))
