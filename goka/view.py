"""The View: a local, continuously updated, read-only copy of a table (all or some partitions).

with View(brokers, "clicks-counter-table", codec.Int64()) as view:
    view.wait_running(timeout=30)
    print(view.get("user-1"))
"""

from __future__ import annotations

import heapq
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from goka._config import client_config
from goka._recovery import RecoveryReader
from goka._view_table import ViewTable
from goka.changes import TableChanges
from goka.codec import Codec, check_codec
from goka.errors import ConfigError, GokaError, StorageError, TopicError
from goka.local_table import HeldPartition, LocalTable, PartitionNotHeld
from goka.partitioner import get_partitioner
from goka.storage import LMDBStorage, Storage, StorageFactory
from goka.storage.base import key_range
from goka.topics import TopicManager

__all__ = ["View", "ViewState"]

T = TypeVar("T")
ViewState = Literal["idle", "recovering", "running", "stopped", "failed"]

_logger = logging.getLogger("goka.view")


class View(Generic[T]):
    """A local copy of ``table``, kept in storage and following the table topic.

    Args:
        brokers: bootstrap servers (``"host:port,..."`` or a list).
        table: the table topic, e.g. ``"clicks-counter-table"`` (see ``goka.group_table``).
        codec: decodes values; the same codec the group persists with.
        partitions: the partitions to hold (default: all; may be empty); ``set_partitions``
            changes them while the view runs.
        storage: where partitions are kept (default: LMDB in a temporary directory removed
            on stop).
        partitioner: the table's partitioner, used to find a key's partition.
        poll_timeout: seconds one poll waits for updates (default 0.1).
        extra_config: librdkafka consumer settings, passed as is.

    States: ``idle`` until started, ``recovering`` until every held partition has caught up
    with the table topic once, then ``running`` (still following updates); ``stopped`` after
    ``stop()``; ``failed`` if the follower thread hit an error (see ``wait_running``).
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        table: str,
        codec: Codec[T],
        *,
        partitions: Iterable[int] | None = None,
        storage: StorageFactory | None = None,
        partitioner: str = "murmur2",
        poll_timeout: float = 0.1,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        check_codec("codec", codec)
        if poll_timeout <= 0:
            raise ConfigError(f"poll_timeout must be positive, got {poll_timeout}")
        self.table = table
        self.codec = codec
        self._partition_for = get_partitioner(partitioner)
        count = TopicManager(brokers, extra_config=extra_config).partitions(table)
        if count is None:
            raise TopicError(
                f"table topic {table!r} does not exist: start a processor of its group first "
                "(the table of group G is 'G-table')"
            )
        self.partition_count = count
        chosen = list(range(count) if partitions is None else partitions)
        held = self._checked(chosen)
        self._temp_storage: str | None = None
        if storage is None:
            self._temp_storage = tempfile.mkdtemp(prefix=f"goka-view-{table}-")
            storage = LMDBStorage(self._temp_storage)
        self._storage = storage
        self._stores: dict[int, Storage] = {p: storage.open(table, p) for p in held}
        self.changes = TableChanges()
        """The change feeds of the held partitions, once ``local_table()`` enabled them
        (see ``goka.changes``)."""
        self._wanted: set[int] | None = None
        """Partitions asked for by ``set_partitions``, until the follower applies them."""
        self._wanted_lock = threading.Lock()
        self._config = client_config(brokers, extra_config, {"group.id": f"goka-view-{table}"})
        self._poll_timeout = poll_timeout
        self._state: ViewState = "idle"
        self._running = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self.recovered_records = 0
        self.wiped_stores = 0
        """Local stores wiped and replayed because they no longer matched the topic (see
        ``goka._stale_stores``)."""
        """Table records applied since start (replayed and followed)."""
        self._caught_up: set[int] = set()
        """Partitions that reached the end of the table topic at least once."""
        self._reader: RecoveryReader | None = None
        self.partitioner = partitioner
        self._started = 0.0
        self.recovery_seconds: float | None = None
        """Seconds from start until every partition held at start had caught up."""

    def _checked(self, partitions: Iterable[int]) -> list[int]:
        chosen = list(partitions)
        count = self.partition_count
        bad = [p for p in chosen if not isinstance(p, int) or not 0 <= p < count]
        if bad:
            raise ConfigError(
                f"partitions {bad} are not partitions of table {self.table!r}, "
                f"which has partitions 0..{count - 1}"
            )
        return sorted(set(chosen))

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions held now."""
        return tuple(sorted(self._stores))

    def set_partitions(self, partitions: Iterable[int]) -> None:
        """Hold ``partitions`` from now on (thread-safe; applied by the follower thread within
        a poll): new ones recover from their local store's offset, dropped ones are closed
        (their local files stay, so coming back replays only the tail)."""
        wanted = set(self._checked(partitions))
        with self._wanted_lock:
            self._wanted = wanted

    @property
    def state(self) -> ViewState:
        return self._state

    def start(self) -> View[T]:
        """Start following the table in a background thread."""
        self._begin()
        self._thread = threading.Thread(
            target=self._follow_in_background, name=f"goka-view-{self.table}", daemon=True
        )
        self._thread.start()
        return self

    def run(self) -> None:
        """Follow the table until ``stop()`` (blocking); raises the error that stopped it."""
        self._begin()
        self._follow()

    def _begin(self) -> None:
        if self._state != "idle":
            raise GokaError(
                f"the view of table {self.table!r} was already started; a View runs once"
            )
        self._state = "recovering"
        self._started = time.monotonic()

    def _follow_in_background(self) -> None:
        try:
            self._follow()
        except BaseException:  # recorded in _follow(); surfaced by wait_running() and error
            _logger.exception("view of table %s failed", self.table)

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the follower, if any."""
        return self._error

    def _follow(self) -> None:
        reader = RecoveryReader(self._config)
        self._reader = reader
        try:
            for partition, store in self._stores.items():
                reader.add(self.table, partition, store, feed=self.changes.open(partition, store))
            pending = {(self.table, partition) for partition in self._stores}
            while not self._stopping.is_set():
                self._apply_wanted(reader, pending)
                if not pending and self._state == "recovering":
                    self._state = "running"
                    self.recovery_seconds = time.monotonic() - self._started
                    self._running.set()
                result = reader.read(10_000, self._poll_timeout)
                self.recovered_records += sum(result.records.values())
                self.wiped_stores = sum(reader.wiped.values())
                self._caught_up.update(partition for _, partition in result.caught_up)
                pending -= result.caught_up
        except BaseException as exc:
            self._error = exc
            self._state = "failed"
            self._running.set()  # wake waiters; they raise
            raise
        finally:
            reader.close()
            if self._state != "failed":
                self._state = "stopped"
            self._finished.set()

    def _apply_wanted(self, reader: RecoveryReader, pending: set[tuple[str, int]]) -> None:
        with self._wanted_lock:
            wanted, self._wanted = self._wanted, None
        if wanted is None:
            return
        for partition in sorted(set(self._stores) - wanted):
            reader.remove(self.table, partition)
            pending.discard((self.table, partition))
            self._caught_up.discard(partition)
            self.changes.close(partition, f"partition {partition} is no longer held here")
            self._stores.pop(partition).close()
        for partition in sorted(wanted - set(self._stores)):
            store = self._storage.open(self.table, partition)
            reader.add(self.table, partition, store, feed=self.changes.open(partition, store))
            self._stores[partition] = store
            pending.add((self.table, partition))
        _logger.info("view of %s holds partitions %s", self.table, sorted(self._stores))

    def wait_running(self, timeout: float | None = None) -> bool:
        """Block until every held partition has caught up; False on timeout.

        Raises the follower's error if it failed.
        """
        reached = self._running.wait(timeout)
        if self._error is not None:
            raise GokaError(f"view of table {self.table!r} failed: {self._error}") from (
                self._error
            )
        return reached and self._state == "running"

    def local_table(self, *, value_codec: str | None = None) -> LocalTable:
        """Thread-safe reads of the held partitions, for servers such as ``viewsvc``.

        ``value_codec`` names the values' codec to announce, when the view reads them as
        raw bytes (default: the view's codec). From now on the partitions' changes are
        published too (``goka.changes``), for watchers: call it before ``start()``.
        """
        self.changes.enable()
        return ViewTable(self, value_codec or self.codec.name)

    def held(self) -> dict[int, HeldPartition]:
        """The held partitions: kind ``replica``, running once caught up, with their lag."""
        reader, stores = self._reader, self._stores
        highs = reader.high_watermarks if reader is not None else {}
        cut_off = self.unreachable_for() > 0  # how far behind the copies are is not known
        held = {}
        for partition, store in list(stores.items()):
            try:
                offset = store.offset()
            except StorageError:  # stopped meanwhile
                continue
            high = highs.get((self.table, partition))
            applied = -1 if offset is None else offset
            held[partition] = HeldPartition(
                partition=partition,
                kind="replica",
                state="running" if partition in self._caught_up else "recovering",
                applied_offset=applied,
                lag=-1 if high is None or cut_off else max(0, high - max(applied, 0)),
            )
        return held

    def unreachable_for(self) -> float:
        """Seconds the view has had no broker connection up (0.0: it has one, or it is not
        following)."""
        reader = self._reader
        return reader.reachability.unreachable_for() if reader is not None else 0.0

    def store(self, partition: int) -> Storage:
        """The store of a held partition; raises PartitionNotHeld."""
        store = self._stores.get(partition)
        if store is None:
            raise PartitionNotHeld(
                f"partition {partition} of table {self.table!r} is not held by this view"
            )
        return store

    def partition_of(self, key: str) -> int:
        return self._partition_for(key.encode(), self.partition_count)

    def get(self, key: str) -> T | None:
        """The key's value (None if absent). While recovering, values may be stale."""
        partition = self.partition_of(key)
        store = self._stores.get(partition)
        if store is None and self._state == "stopped":
            raise GokaError(f"the view of table {self.table!r} is stopped")
        if store is None:
            raise ConfigError(
                f"key {key!r} is in partition {partition} of table {self.table!r}, which this "
                f"view does not hold (it holds {list(self.partitions)})"
            )
        raw = store.get(key.encode())
        return None if raw is None else self.codec.decode(raw)

    def items(
        self, *, prefix: str | None = None, start: str | None = None, end: str | None = None
    ) -> Iterator[tuple[str, T]]:
        """(key, value) pairs in key order (by UTF-8 bytes) across the held partitions.

        ``prefix`` keeps keys starting with it; ``start`` (inclusive) and ``end``
        (exclusive) bound the range. All three combine.
        """
        if self._state == "stopped":
            raise GokaError(f"the view of table {self.table!r} is stopped")
        low, high = key_range(prefix, start, end)
        merged = heapq.merge(
            *(store.items(low, high) for store in self._stores.values()),
            key=lambda row: row[0],
        )
        decode = self.codec.decode
        for raw_key, raw_value in merged:
            yield raw_key.decode(errors="surrogateescape"), decode(raw_value)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop following, close the stores (and remove temporary storage). Idempotent."""
        self._stopping.set()
        if self._state == "idle":
            self._state = "stopped"
            self._finished.set()
        elif not self._finished.wait(timeout):
            raise GokaError(f"the view of table {self.table!r} did not stop within {timeout}s")
        for partition, store in self._stores.items():
            self.changes.close(partition, f"the view of {self.table!r} stopped")
            store.close()
        self._stores = {}
        if self._temp_storage is not None:
            shutil.rmtree(self._temp_storage, ignore_errors=True)
            self._temp_storage = None

    def __enter__(self) -> View[T]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
