"""The storage contract, for every backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from goka.errors import ConfigError, StorageError
from goka.storage import LMDBStorage, MemoryStorage, StorageFactory, StoreOrigin
from goka.storage.base import prefix_end


@pytest.fixture(params=["lmdb", "memory"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    if request.param == "lmdb":
        yield LMDBStorage(tmp_path, map_size=1 << 20)
    else:
        yield MemoryStorage()


def test_apply_writes_rows_and_offset_together(factory: StorageFactory) -> None:
    store = factory.open("t", 0)
    assert store.offset() is None
    assert store.get(b"a") is None
    store.apply({b"a": b"1", b"b": b"2"}, 10)
    assert (store.get(b"a"), store.get(b"b"), store.offset()) == (b"1", b"2", 10)
    store.apply({b"a": None, b"c": b"3"}, 12)
    assert store.get(b"a") is None
    assert store.count() == 2
    assert store.offset() == 12
    store.close()


def test_read_returns_value_and_offset_together(factory: StorageFactory) -> None:
    store = factory.open("t", 1)
    assert store.read([b"a"]) == ([None], None)
    store.apply({b"a": b"1", b"b": b"2"}, 7)
    assert store.read([b"a"]) == ([b"1"], 7)
    assert store.read([b"b", b"missing", b"a"]) == ([b"2", None, b"1"], 7)
    assert store.read([]) == ([], 7)
    store.close()


def test_origin_is_kept_with_the_rows_and_survives_a_reopen(factory: StorageFactory) -> None:
    store = factory.open("t", 2)
    assert store.origin() == StoreOrigin(None, None)
    store.record_origin(topic_id="id-1")
    assert store.origin() == StoreOrigin("id-1", None)
    before = time.time()
    store.apply({b"a": b"1"}, 3)  # applying is being in sync
    synced_at = store.origin().synced_at
    assert synced_at is not None and before <= synced_at <= time.time()
    store.record_origin(synced_at=before - 3600)
    assert store.origin() == StoreOrigin("id-1", before - 3600)
    store.close()
    again = factory.open("t", 2)
    assert again.origin() == StoreOrigin("id-1", before - 3600)
    again.close()


def test_wipe_leaves_a_new_store(factory: StorageFactory) -> None:
    store = factory.open("t", 5)
    store.apply({b"a": b"1", b"b": b"2"}, 9)
    store.record_origin(topic_id="id-1")
    store.wipe()
    assert (store.count(), store.offset(), store.get(b"a")) == (0, None, None)
    assert store.origin() == StoreOrigin(None, None)
    store.apply({b"c": b"3"}, 1)  # usable again
    assert list(store.items()) == [(b"c", b"3")]
    store.close()


def test_lmdb_store_refuses_reads_after_close(tmp_path: Path) -> None:
    store = LMDBStorage(tmp_path, map_size=1 << 20).open("t", 0)
    store.apply({b"a": b"1"}, 1)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.get(b"a")
    with pytest.raises(StorageError, match="closed"):
        store.read([b"a"])


def test_reopen_keeps_state(factory: StorageFactory) -> None:
    store = factory.open("t", 3)
    store.apply({b"k": b"v"}, 5)
    store.close()
    again = factory.open("t", 3)
    assert (again.get(b"k"), again.offset()) == (b"v", 5)
    assert factory.open("t", 4).offset() is None
    again.close()


def test_items_in_key_order_with_bounds(factory: StorageFactory) -> None:
    store = factory.open("t", 0)
    keys = [f"k{i:05d}".encode() for i in range(3000)]
    store.apply({k: k[::-1] for k in reversed(keys)}, 1)
    assert [k for k, _ in store.items()] == keys
    assert [k for k, _ in store.items(start=b"k00100", end=b"k00200")] == keys[100:200]
    assert list(store.items(start=b"k02999")) == [(b"k02999", b"99920k")]
    assert list(store.items(start=b"z")) == []
    store.close()


def test_reads_of_keys_never_written_find_nothing(factory: StorageFactory) -> None:
    """An empty key or one over LMDB's 511 bytes that was never written is not found (a
    gRPC Get of it answers found=false, not an LMDB error)."""
    store = factory.open("t", 0)
    longest = b"a" * 511
    store.apply({b"a": b"1", longest: b"2", b"b": b"3"}, 1)
    assert store.get(b"") is None
    assert store.get(b"a" * 600) is None
    assert store.read([b"", b"a" * 600, b"a", longest]) == ([None, None, b"1", b"2"], 1)
    # a scan page ending at the longest key resumes after it: start = key + b"\x00"
    assert [k for k, _ in store.items(start=longest + b"\x00")] == [b"b"]
    assert [k for k, _ in store.items(start=b"a" * 600)] == [b"b"]
    assert [k for k, _ in store.items(start=b"")] == [b"a", longest, b"b"]
    store.close()


def test_keys_of_any_length_are_kept_in_key_order(factory: StorageFactory) -> None:
    """Kafka keys have no length limit and Goka (LevelDB) stores any: the empty key and keys
    over LMDB's 511 bytes are written, read, scanned in byte order, counted, deleted and kept
    across a reopen like the others."""
    store = factory.open("t", 0)
    long_a, long_b, huge = b"a" * 600, b"a" * 511 + b"b", b"z" * 70_000
    store.apply({b"a": b"1", b"b": b"2"}, 1)
    store.apply({long_b: b"long b", b"": b"empty", huge: b"huge", long_a: b"long a"}, 2)
    assert [store.get(k) for k in (b"", long_a, long_b, huge, b"a")] == [
        b"empty", b"long a", b"long b", b"huge", b"1"
    ]  # fmt: skip
    assert store.read([long_a, b"b", b"", b"c"]) == ([b"long a", b"2", b"empty", None], 2)
    everything = [b"", b"a", long_a, long_b, b"b", huge]
    assert [k for k, _ in store.items()] == everything
    assert dict(store.items())[huge] == b"huge"
    assert [k for k, _ in store.items(start=b"a\x00", end=b"b")] == [long_a, long_b]
    assert [k for k, _ in store.items(start=long_a + b"\x00")] == [long_b, b"b", huge]
    assert store.count() == 6
    store.apply({long_a: None, b"": None, b"b": None, long_b: b"changed"}, 3)
    assert [(k, v) for k, v in store.items() if k != huge] == [(b"a", b"1"), (long_b, b"changed")]
    assert (store.get(long_a), store.get(b""), store.count()) == (None, None, 3)
    store.close()
    reopened = factory.open("t", 0)
    assert (reopened.get(long_b), reopened.get(huge), reopened.offset()) == (b"changed", b"huge", 3)
    reopened.wipe()
    assert (reopened.get(long_b), reopened.count(), list(reopened.items())) == (None, 0, [])
    reopened.close()


def test_lmdb_map_grows_when_full(tmp_path: Path) -> None:
    store = LMDBStorage(tmp_path, map_size=1 << 20).open("big", 0)
    value = b"x" * 4000
    for batch in range(10):  # ~4 MB into a 1 MiB map
        store.apply({f"{batch}-{i}".encode(): value for i in range(100)}, batch)
    assert store.count() == 1000
    assert store.offset() == 9
    store.close()


def test_lmdb_layout_is_one_environment_per_partition(tmp_path: Path) -> None:
    storage = LMDBStorage(tmp_path)
    storage.open("clicks-table", 0).close()
    storage.open("clicks-table", 7).close()
    assert sorted(p.name for p in (tmp_path / "clicks-table").iterdir()) == ["0", "7"]


@pytest.mark.parametrize("bad", ["", "a/b", ".."])
def test_lmdb_rejects_unusable_table_names(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="directory name"):
        LMDBStorage(tmp_path).open(bad, 0)


def test_prefix_end() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None


@pytest.mark.parametrize("damage", ["garbage header", "truncated"])
def test_a_damaged_lmdb_store_is_wiped_at_open(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LMDBStorage(tmp_path, map_size=1 << 20)
    store = storage.open("t", 0)
    store.apply({f"k{i}".encode(): b"v" * 100 for i in range(500)}, 500)
    store.close()
    data = tmp_path / "t" / "0" / "data.mdb"
    with data.open("r+b") as f:
        if damage == "garbage header":
            f.write(bytes(range(256)) * 32)  # both meta pages and more
        else:
            f.truncate(100)
    with caplog.at_level("WARNING", "goka.storage"):
        again = storage.open("t", 0)
    assert (again.offset(), again.count()) == (None, 0)  # new: replayed from the topic
    [record] = caplog.records
    assert f"the LMDB store at {tmp_path / 't' / '0'} is damaged" in record.getMessage()
    again.apply({b"a": b"1"}, 1)
    assert again.get(b"a") == b"1"
    again.close()


def test_lmdb_durability_is_chosen_by_the_factory(tmp_path: Path) -> None:
    """The environment's own flags: data flushed at commit, the meta page not (durable), or
    nothing flushed."""
    for durable, expected in ((True, (True, False)), (False, (False, False))):
        store = LMDBStorage(tmp_path / str(durable), durable=durable).open("t", 0)
        flags = store._env.flags()  # type: ignore[attr-defined]
        assert (flags["sync"], flags["metasync"]) == expected
        store.close()
