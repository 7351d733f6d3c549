"""The Context handed to processor callbacks: the message's metadata and the key's state.

A Context is only valid during the callback it was passed to. What it does beyond reading
the message is delegated to its :class:`ContextHost`: the processor's batch runner, or the
in-memory tester.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

from goka._partition import CACHEABLE, PartitionTask
from goka.codec import Codec
from goka.errors import CallbackFailed, CodecError, ConfigError

__all__ = ["Completion", "Context", "ContextHost"]

Completion = Callable[..., None]
"""Returned by ``ctx.defer_commit()``: call ``done()`` on success, ``done(error)`` to fail."""


class ContextHost(Protocol):
    """What a Context needs from whoever runs the callbacks."""

    group: str
    table_codec: Codec[Any] | None

    def emit(
        self, topic: str, key: str, value: Any, headers: Mapping[str, bytes] | None
    ) -> None: ...

    def loopback(self, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None: ...

    def join(self, table: str, partition: int, raw_key: bytes) -> Any: ...

    def lookup(self, table: str, key: str) -> Any: ...

    def defer_commit(self, task: PartitionTask, msg: Any) -> Completion: ...

    def fail(self, error: BaseException) -> None: ...


class Context:
    """What a callback can read and do for the message being processed.

    Only valid during the callback it was passed to: the processor moves one Context from
    message to message (as Kafka Streams does with its ProcessorContext), so keep what you
    need of it (``ctx.key``, ``ctx.offset``, ...), not the Context.
    """

    __slots__ = ("_host", "_msg", "_raw_key", "_task")

    def __init__(self, host: ContextHost, task: PartitionTask, msg: Any, raw_key: bytes) -> None:
        self._host = host
        self._task = task
        self._msg = msg
        self._raw_key = raw_key

    @property
    def key(self) -> str:
        """The message key (UTF-8); also the key of the state this context reads and writes."""
        try:
            return self._raw_key.decode()
        except UnicodeDecodeError as exc:
            raise CodecError(
                f"the key of the message at {self._where()} is not UTF-8 text: "
                f"{self._raw_key[:32]!r}"
            ) from exc

    @property
    def topic(self) -> str:
        """The message's topic (``""`` in a visit)."""
        topic: str = self._msg.topic()
        return topic

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def offset(self) -> int:
        """The message's offset (-1 in a visit)."""
        offset: int = self._msg.offset()
        return offset

    @property
    def timestamp(self) -> datetime | None:
        """The message timestamp (UTC), None if the message has none."""
        kind, millis = self._msg.timestamp()
        if kind == 0 or millis < 0:  # TIMESTAMP_NOT_AVAILABLE
            return None
        return datetime.fromtimestamp(millis / 1000, tz=UTC)

    @property
    def headers(self) -> dict[str, bytes]:
        """The message headers; for a repeated header name, the last value."""
        headers: list[tuple[str, bytes | None]] = self._msg.headers() or []
        return {name: value or b"" for name, value in headers}

    def value(self) -> Any:
        """The key's current value in the group table (None if it has none).

        Values other than int, float, str, bytes and bool are decoded anew on every call:
        changing one in place changes nothing until it is passed to ``set_value``.
        """
        task, raw_key = self._task, self._raw_key
        cache = task.cache
        if cache is not None:
            cached = cache.get(raw_key, cache)  # the cache itself: never a cached value
            if cached is not cache:
                return cached
        # not cached: decoded from what this batch or the one in flight wrote, or is stored
        buffer, inflight = task.buffer, task.inflight
        if raw_key in buffer:
            raw = buffer[raw_key]
        elif raw_key in inflight:
            raw = inflight[raw_key]
        else:
            raw = self._store().get(raw_key)
        value = None if raw is None else self._table_codec().decode(raw)
        if cache is not None and type(value) in CACHEABLE:
            cache[raw_key] = value
        return value

    def set_value(self, value: Any) -> None:
        """Set the key's value in the group table (encoded now, written at the batch end)."""
        codec = self._host.table_codec
        task = self._task
        if codec is None or task.store is None:
            raise self._no_table()
        if value is None:
            raise ConfigError("set_value(None) is not allowed: use ctx.delete() to remove a key")
        task.buffer[self._raw_key] = codec.encode(value)
        cache = task.cache
        if cache is not None:
            if type(value) in CACHEABLE:
                cache[self._raw_key] = value
            else:
                cache.pop(self._raw_key, None)

    def delete(self) -> None:
        """Delete the key from the group table (a tombstone in the table topic)."""
        task = self._task
        self._store()
        task.buffer[self._raw_key] = None
        if task.cache is not None:
            task.cache[self._raw_key] = None

    def emit(
        self, topic: str, key: str, value: Any, headers: Mapping[str, bytes] | None = None
    ) -> None:
        """Send ``value`` (None: a tombstone) with ``key`` to a declared ``output`` topic."""
        self._host.emit(topic, key, value, headers)

    def loopback(self, key: str, value: Any, headers: Mapping[str, bytes] | None = None) -> None:
        """Send ``value`` with ``key`` to the group's loop topic; the ``loop`` callback gets it."""
        self._host.loopback(key, value, headers)

    def join(self, table: str) -> Any:
        """The current key's value in the joined ``table`` (declared with ``goka.join``)."""
        return self._host.join(table, self._task.partition, self._raw_key)

    def lookup(self, table: str, key: str) -> Any:
        """Any key's value in ``table`` (declared with ``goka.lookup``)."""
        return self._host.lookup(table, key)

    def defer_commit(self) -> Completion:
        """Hold back the commit of this message until the returned ``done()`` is called.

        The input offset is committed only once every deferred completion of this message,
        and of all earlier messages of its partition, has been called. ``done(error)`` with
        an exception stops the processor with that error. ``done`` may be called from any
        thread, once. Not available with ``guarantee="exactly_once"`` (raises ConfigError):
        a batch's offsets are committed in its transaction.
        """
        return self._host.defer_commit(self._task, self._msg)

    def fail(self, error: BaseException | str) -> NoReturn:
        """Stop the processor with ``error``; ``run()`` raises ProcessorError from it.

        Nothing of the current batch is committed.
        """
        cause = error if isinstance(error, BaseException) else RuntimeError(error)
        self._host.fail(cause)
        raise CallbackFailed(f"ctx.fail() at {self._where()}: {cause}") from cause

    def _store(self) -> Any:
        store = self._task.store
        if store is None:
            raise self._no_table()
        return store

    def _table_codec(self) -> Codec[Any]:
        codec = self._host.table_codec
        if codec is None:
            raise self._no_table()
        return codec

    def _no_table(self) -> ConfigError:
        return ConfigError(
            f"group {self._host.group!r} has no table: add goka.persist(codec) to "
            "define_group to use ctx.value(), ctx.set_value() or ctx.delete()"
        )

    def _where(self) -> str:
        return f"topic {self.topic!r} partition {self.partition} offset {self.offset}"
