"""The pieces of TableService.Scan that need no server: key bounds, page tokens (which the
client makes too, to resume a broken stream), the merge of partitions into one key order, and
batching into messages."""

from __future__ import annotations

import base64
import hashlib
import heapq
import re
import struct
from collections.abc import Iterable, Iterator

from goka.storage.base import prefix_end
from viewsvc.wire.errors import InvalidArgument

__all__ = [
    "Row",
    "batches",
    "decode_page_token",
    "encode_page_token",
    "merge",
    "request_fingerprint",
    "scan_bounds",
]

Row = tuple[bytes, bytes, int]
"""(key, value, partition)."""

_VERSION = 1
_HASH_SIZE = 8
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_OTHER_SCAN = (
    "page_token belongs to another scan: pass the same table, start, end, prefix and "
    "partitions as the call that returned it"
)


def scan_bounds(
    start: bytes, end: bytes, prefix: bytes, after: bytes | None
) -> tuple[bytes | None, bytes | None]:
    """The byte range ``[low, high)`` of the keys in ``[start, end)`` (empty: unbounded) that
    start with ``prefix`` and are greater than ``after`` (the previous page's last key);
    None is no bound. The range may be empty (``low >= high``)."""
    if start and end and start > end:
        raise InvalidArgument(
            "end",
            f"end {end!r} is before start {start!r}: pass end > start, or an empty end "
            "for no upper bound",
        )
    low = start or None
    high = end or None
    if prefix:
        low = prefix if low is None else max(low, prefix)
        limit = prefix_end(prefix)  # None for a prefix of 0xff bytes only: no upper bound
        if limit is not None:
            high = limit if high is None else min(high, limit)
    if after is not None:
        successor = after + b"\x00"  # the smallest key greater than `after`
        low = successor if low is None else max(low, successor)
    return low, high


def request_fingerprint(
    start: bytes, end: bytes, prefix: bytes, partitions: Iterable[int]
) -> bytes:
    """What makes two scan requests the same scan for paging (the order of ``partitions``
    and duplicates in it do not matter; ``limit`` and read options may change per page)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (start, end, prefix):
        digest.update(struct.pack(">I", len(part)) + part)
    chosen = sorted(set(partitions))
    digest.update(struct.pack(f">I{len(chosen)}i", len(chosen), *chosen))
    return digest.digest()


def encode_page_token(table: str, request_fingerprint: bytes, last_key: bytes) -> str:
    """A token to resume a scan after ``last_key``: version byte, a hash of the scan, the key.

    Not secret and not signed: forging one only starts a scan at another key, which
    ``start`` allows anyway. Without a server secret, any member can continue any page.
    """
    raw = bytes([_VERSION]) + _scan_hash(table, request_fingerprint) + last_key
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(table: str, request_fingerprint: bytes, token: str) -> bytes:
    """The last key of the previous page; raises InvalidArgument(field="page_token")."""
    if not _TOKEN.match(token):
        raise _malformed()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as exc:  # binascii.Error, e.g. a length no encoder produces
        raise _malformed() from exc
    if len(raw) < 1 + _HASH_SIZE:
        raise _malformed()
    if raw[0] != _VERSION:
        raise InvalidArgument(
            "page_token",
            f"page_token has version {raw[0]}, this server reads version {_VERSION}: start "
            "the scan again without a page_token",
        )
    if raw[1 : 1 + _HASH_SIZE] != _scan_hash(table, request_fingerprint):
        raise InvalidArgument("page_token", _OTHER_SCAN)
    return raw[1 + _HASH_SIZE :]


def merge(sources: Iterable[Iterator[Row]]) -> Iterator[Row]:
    """The rows of all ``sources`` (each in key order) in global key order."""
    return heapq.merge(*sources, key=lambda row: row[0])


def batches(rows: Iterator[Row], *, max_rows: int, max_bytes: int) -> Iterator[list[Row]]:
    """Lazily chunks ``rows``: at most ``max_rows`` rows and ``max_bytes`` bytes of keys and
    values per chunk, except that a single row larger than ``max_bytes`` is a chunk alone."""
    if max_rows < 1 or max_bytes < 1:
        raise ValueError(f"max_rows and max_bytes must be positive, got {max_rows}, {max_bytes}")
    chunk: list[Row] = []
    size = 0
    for row in rows:
        row_size = len(row[0]) + len(row[1])
        if chunk and size + row_size > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += row_size
        if len(chunk) >= max_rows:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _scan_hash(table: str, fingerprint: bytes) -> bytes:
    raw_table = table.encode()
    data = struct.pack(">I", len(raw_table)) + raw_table + fingerprint
    return hashlib.blake2b(data, digest_size=_HASH_SIZE).digest()


def _malformed() -> InvalidArgument:
    return InvalidArgument(
        "page_token",
        "page_token is not a token this service issued: pass the next_page_token of a "
        "previous response unchanged, or none to start from the beginning",
    )
