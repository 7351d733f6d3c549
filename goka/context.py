"""The Context handed to processor callbacks: the message's metadata and the key's state.

A Context is only valid during the callback it was passed to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from goka.errors import CodecError, ConfigError

if TYPE_CHECKING:
    from goka._partition import PartitionTask
    from goka._processing import BatchRunner

__all__ = ["Context"]


class Context:
    """What a callback can read and do for the message being processed."""

    __slots__ = ("_msg", "_raw_key", "_runner", "_task")

    def __init__(self, runner: BatchRunner, task: PartitionTask, msg: Any, raw_key: bytes) -> None:
        self._runner = runner
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
        topic: str = self._msg.topic()
        return topic

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def offset(self) -> int:
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
        """The key's current value in the group table (None if it has none)."""
        hit = self._task.buffer.get(self._raw_key)
        if hit is not None:
            return hit[0]
        raw = self._store().get(self._raw_key)
        if raw is None:
            return None
        return self._runner.table_codec.decode(raw)  # type: ignore[union-attr]

    def set_value(self, value: Any) -> None:
        """Set the key's value in the group table (encoded now, written at the batch end)."""
        self._store()
        if value is None:
            raise ConfigError("set_value(None) is not allowed: use ctx.delete() to remove a key")
        encoded = self._runner.table_codec.encode(value)  # type: ignore[union-attr]
        self._task.buffer[self._raw_key] = (value, encoded)

    def delete(self) -> None:
        """Delete the key from the group table (a tombstone in the table topic)."""
        self._store()
        self._task.buffer[self._raw_key] = (None, None)

    def emit(
        self, topic: str, key: str, value: Any, headers: dict[str, bytes] | None = None
    ) -> None:
        """Send ``value`` (None: a tombstone) with ``key`` to a declared ``output`` topic."""
        self._runner.emit(topic, key, value, headers)

    def _store(self) -> Any:
        store = self._task.store
        if store is None:
            raise ConfigError(
                f"group {self._runner.group!r} has no table: add goka.persist(codec) to "
                "define_group to use ctx.value(), ctx.set_value() or ctx.delete()"
            )
        return store

    def _where(self) -> str:
        return f"topic {self.topic!r} partition {self.partition} offset {self.offset}"
