"""Local table storage: LMDB on disk, or memory; one store per table partition."""

from goka.storage.base import Storage, StorageFactory, StoreOrigin
from goka.storage.lmdb import LMDBStorage
from goka.storage.memory import MemoryStorage

__all__ = ["LMDBStorage", "MemoryStorage", "Storage", "StorageFactory", "StoreOrigin"]
