"""LMDB storage: one environment per table partition, under ``<root>/<table>/<partition>/``.

Rows live in the ``rows`` database and the applied table offset in ``meta``, beside the
store's origin (the topic's id, when it was last in sync); ``apply`` writes rows, offset and
sync time in one transaction. When the map is full it doubles and the transaction is retried.

Keys LMDB cannot hold (the empty key, and keys over its maximum of 511 bytes) are kept in the
``oversize`` database under the SHA-256 of the key, with the key itself before the value:
Kafka keys have no such limit, and Goka (LevelDB) stores them, so a table written by a Goka
service in Go may hold them. They are looked up there, merged into ``items()`` in key order,
and cost nothing while a store has none (the common case: every write goes to ``rows`` first,
and only a batch LMDB refuses is split).

Durability: by default each transaction's data pages are flushed to disk at commit, but not
its meta page (LMDB's ``MDB_NOMETASYNC``): a killed process loses nothing (the OS holds the
pages), and a machine crash may undo the last transaction but never corrupts the store, which
stays a prefix of the table topic, so recovery replays the rest. ``durable=False`` flushes
nothing (``MDB_NOSYNC``): faster, but on a file system that reorders writes a machine crash
may then leave a damaged store. A store LMDB cannot open as its own (damaged, or not an LMDB
file) is wiped and replayed from its topic instead of stopping the processor at every start.
The cost is measured in bench/RESULTS.md (processor_throughput, ``--lmdb-durability``).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
import shutil
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import lmdb

from goka.errors import ConfigError, StorageError
from goka.storage.base import Storage, StoreOrigin

__all__ = ["LMDBStorage"]

_logger = logging.getLogger("goka.storage")

_DAMAGED = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError,
            lmdb.PageNotFoundError)  # fmt: skip
"""What LMDB raises for a file that is not a sound LMDB environment."""

_KEY_LENGTH = struct.Struct(">I")
"""Before the key in an ``oversize`` entry: the key's length."""
_OFFSET_KEY = b"offset"
_TOPIC_ID_KEY = b"topic_id"
_SYNCED_AT_KEY = b"synced_at"
_ITER_CHUNK = 1024


class _ResizeLock:
    """Many concurrent transactions, or one map resize or close: LMDB forbids resizing under a
    transaction, and closing an environment that another thread reads from (gRPC handlers
    read while the processor releases a partition) would free memory under that read."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._active = 0
        self._resizing = False
        self._closed = False
        self._path = path

    # enter() and exit() run twice per served read: plain lock calls, the condition only
    # when a resize or close waits

    def enter(self) -> None:
        self._lock.acquire()
        try:
            while self._resizing:
                self._cond.wait()
            if self._closed:
                raise StorageError(f"the LMDB store at {self._path} is closed")
            self._active += 1
        finally:
            self._lock.release()

    def exit(self) -> None:
        self._lock.acquire()
        self._active -= 1
        if not self._active and (self._resizing or self._closed):
            self._cond.notify_all()
        self._lock.release()

    def resize(self, env: Any) -> None:
        with self._cond:
            self._resizing = True
            try:
                while self._active:
                    self._cond.wait()
                env.set_mapsize(env.info()["map_size"] * 2)
            finally:
                self._resizing = False
                self._cond.notify_all()

    def close(self, env: Any) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._active:
                self._cond.wait()
            env.close()


def _open_env(path: Path, map_size: int, durable: bool) -> tuple[Any, Any, Any, Any]:
    """The environment at ``path`` and its databases (rows, meta, oversize), checked by
    reading the offset."""
    env = lmdb.open(
        str(path),
        map_size=map_size,
        max_dbs=3,
        sync=durable,
        metasync=False,
        readahead=False,
        max_readers=1024,
    )
    try:
        rows, meta = env.open_db(b"rows"), env.open_db(b"meta")
        oversize = env.open_db(b"oversize")
        with env.begin(db=meta) as txn:
            txn.get(_OFFSET_KEY)
        with env.begin(db=rows) as txn:
            txn.stat(rows)
    except BaseException:
        env.close()
        raise
    return env, rows, meta, oversize


def _oversize_key(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def _oversize_entry(key: bytes, value: bytes) -> bytes:
    return _KEY_LENGTH.pack(len(key)) + key + value


def _oversize_row(entry: bytes) -> tuple[bytes, bytes]:
    """(key, value) of an ``oversize`` entry."""
    (length,) = _KEY_LENGTH.unpack_from(entry)
    start = _KEY_LENGTH.size
    return entry[start : start + length], entry[start + length :]


class _LMDBStore:
    def __init__(self, path: Path, map_size: int, durable: bool = True) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            try:
                self._env, self._rows, self._meta, self._oversize = _open_env(
                    path, map_size, durable
                )
            except _DAMAGED as exc:
                _logger.warning(
                    "the LMDB store at %s is damaged (%s): it is wiped, and its table "
                    "partition replayed from the topic",
                    path,
                    exc,
                )
                shutil.rmtree(path)
                path.mkdir(parents=True)
                self._env, self._rows, self._meta, self._oversize = _open_env(
                    path, map_size, durable
                )
        except lmdb.Error as exc:
            raise StorageError(f"cannot open LMDB store at {path}: {exc}") from exc
        self._max_key: int = self._env.max_key_size()
        self._lock = _ResizeLock(path)
        self.path = path

    def get(self, key: bytes) -> bytes | None:
        self._lock.enter()
        try:
            with self._env.begin(db=self._rows) as txn:
                if 0 < len(key) <= self._max_key:
                    value: bytes | None = txn.get(key)
                    return value
                return self._get_oversize(txn, key)
        finally:
            self._lock.exit()

    def _get_oversize(self, txn: Any, key: bytes) -> bytes | None:
        entry = txn.get(_oversize_key(key), db=self._oversize)
        if entry is None:
            return None
        stored, value = _oversize_row(entry)
        return value if stored == key else None  # a SHA-256 collision: never seen

    def offset(self) -> int | None:
        self._lock.enter()
        try:
            with self._env.begin(db=self._meta) as txn:
                raw = txn.get(_OFFSET_KEY)
        finally:
            self._lock.exit()
        return None if raw is None else int(raw)

    def read(self, keys: Sequence[bytes]) -> tuple[list[bytes | None], int | None]:
        self._lock.enter()
        try:
            with self._env.begin() as txn:
                get, rows = txn.get, self._rows
                try:
                    values: list[bytes | None] = [get(key, db=rows) for key in keys]
                except lmdb.BadValsizeError:  # a key LMDB cannot hold (empty, too long)
                    most = self._max_key
                    values = [
                        get(k, db=rows) if 0 < len(k) <= most else self._get_oversize(txn, k)
                        for k in keys
                    ]
                raw = get(_OFFSET_KEY, db=self._meta)
        finally:
            self._lock.exit()
        return values, None if raw is None else int(raw)

    def apply(self, writes: Mapping[bytes, bytes | None], next_offset: int) -> None:
        while True:
            self._lock.enter()
            try:
                with self._env.begin(write=True) as txn:
                    try:
                        _write_rows(txn, self._rows, writes)
                    except lmdb.BadValsizeError:  # LMDB checks a key before it writes
                        self._write_split(txn, writes)
                    txn.put(_OFFSET_KEY, str(next_offset).encode(), db=self._meta)
                    txn.put(_SYNCED_AT_KEY, repr(time.time()).encode(), db=self._meta)
                return
            except lmdb.MapFullError:
                pass  # the transaction was aborted: grow the map and retry it
            except lmdb.Error as exc:
                raise StorageError(f"LMDB write to {self.path} failed: {exc}") from exc
            finally:
                self._lock.exit()
            self._lock.resize(self._env)

    def _write_split(self, txn: Any, writes: Mapping[bytes, bytes | None]) -> None:
        """``writes``, some of whose keys LMDB cannot hold: those go to ``oversize``."""
        most = self._max_key
        held = {k: v for k, v in writes.items() if 0 < len(k) <= most}
        _write_rows(txn, self._rows, held)
        for key, value in writes.items():
            if key in held:
                continue
            if value is None:
                txn.delete(_oversize_key(key), db=self._oversize)
            else:
                txn.put(_oversize_key(key), _oversize_entry(key, value), db=self._oversize)

    def items(
        self, start: bytes | None = None, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterates in chunks, each in its own read transaction, so that a slow consumer of
        the iterator never holds a transaction (and so never blocks a map resize); the rows
        under oversize keys are read at the start and merged in."""
        oversize = self._oversize_rows(start, end)
        rows = self._rows_items(start, end)
        if not oversize:
            return rows
        return heapq.merge(rows, oversize, key=lambda row: row[0])

    def _oversize_rows(self, start: bytes | None, end: bytes | None) -> list[tuple[bytes, bytes]]:
        self._lock.enter()
        try:
            with self._env.begin(db=self._oversize) as txn:
                if not txn.stat(self._oversize)["entries"]:
                    return []
                found = (_oversize_row(entry) for entry in txn.cursor().iternext(keys=False))
                return sorted(
                    (key, value)
                    for key, value in found
                    if (start is None or key >= start) and (end is None or key < end)
                )
        finally:
            self._lock.exit()

    def _rows_items(
        self, start: bytes | None = None, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        position = start or None
        skip_equal = False
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            # keys longer than LMDB's maximum cannot be stored, and cannot be sought: seek
            # their prefix and skip the keys before them
            floor = position if position is not None and len(position) > self._max_key else None
            self._lock.enter()
            try:
                with self._env.begin(db=self._rows) as txn:
                    cursor = txn.cursor()
                    if position is None:
                        found = cursor.first()
                    else:
                        found = cursor.set_range(position[: self._max_key])
                    while found:
                        key = cursor.key()
                        if floor is not None:
                            if key < floor:
                                found = cursor.next()
                                continue
                            floor = None
                        if skip_equal and key == position:
                            skip_equal = False
                            found = cursor.next()
                            continue
                        if end is not None and key >= end:
                            break
                        chunk.append((key, cursor.value()))
                        if len(chunk) == _ITER_CHUNK:
                            break
                        found = cursor.next()
            finally:
                self._lock.exit()
            yield from chunk
            if len(chunk) < _ITER_CHUNK:
                return
            position, skip_equal = chunk[-1][0], True

    def origin(self) -> StoreOrigin:
        self._lock.enter()
        try:
            with self._env.begin(db=self._meta) as txn:
                topic_id, synced_at = txn.get(_TOPIC_ID_KEY), txn.get(_SYNCED_AT_KEY)
        finally:
            self._lock.exit()
        return StoreOrigin(
            None if topic_id is None else topic_id.decode(),
            None if synced_at is None else float(synced_at),
        )

    def record_origin(self, *, topic_id: str | None = None, synced_at: float | None = None) -> None:
        entries = [(_TOPIC_ID_KEY, topic_id), (_SYNCED_AT_KEY, synced_at)]
        self._write_meta({key: repr(v) if isinstance(v, float) else v for key, v in entries})

    def wipe(self) -> None:
        self._lock.enter()
        try:
            with self._env.begin(write=True) as txn:
                txn.drop(self._rows, delete=False)
                txn.drop(self._meta, delete=False)
                txn.drop(self._oversize, delete=False)
        except lmdb.Error as exc:
            raise StorageError(f"wiping the LMDB store at {self.path} failed: {exc}") from exc
        finally:
            self._lock.exit()

    def _write_meta(self, entries: Mapping[bytes, str | None]) -> None:
        self._lock.enter()
        try:
            with self._env.begin(write=True, db=self._meta) as txn:
                for key, value in entries.items():
                    if value is not None:
                        txn.put(key, value.encode())
        except lmdb.Error as exc:
            raise StorageError(f"LMDB write to {self.path} failed: {exc}") from exc
        finally:
            self._lock.exit()

    def count(self) -> int:
        self._lock.enter()
        try:
            with self._env.begin(db=self._rows) as txn:
                entries: int = txn.stat(self._rows)["entries"]
                return entries + int(txn.stat(self._oversize)["entries"])
        finally:
            self._lock.exit()

    def close(self) -> None:
        self._lock.close(self._env)


def _write_rows(txn: Any, rows: Any, writes: Mapping[bytes, bytes | None]) -> None:
    puts = cast("Iterable[tuple[bytes, bytes]]", writes.items())
    if None in writes.values():  # the keys are distinct: deletes go first
        for key, value in writes.items():
            if value is None:
                txn.delete(key, db=rows)
        puts = [(k, v) for k, v in writes.items() if v is not None]
    txn.cursor(db=rows).putmulti(puts)  # one C loop: a third of put's time


class LMDBStorage:
    """A storage factory keeping each table partition in its own LMDB environment.

    Args:
        root: the directory holding ``<table>/<partition>/``; created if missing.
        map_size: initial map size in bytes per partition (default 64 MiB); it doubles
            automatically whenever a write finds it full.
        durable: flush each transaction's data to disk at commit (default True), so a
            machine crash cannot damage a store; False trades that for speed (see the
            module docstring).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, map_size: int = 64 << 20, durable: bool = True
    ) -> None:
        if map_size < 1 << 20:
            raise ConfigError(f"LMDB map_size must be at least 1 MiB, got {map_size}")
        self.root = Path(root)
        self._map_size = map_size
        self.durable = durable

    def open(self, table: str, partition: int) -> Storage:
        if not table or "/" in table or table in (".", ".."):
            raise ConfigError(f"table name {table!r} cannot be used as a directory name")
        return _LMDBStore(self.root / table / str(partition), self._map_size, self.durable)
