"""Creating and checking topics: Goka's TopicManager.

Tables are compacted topics; every config a table relies on is set explicitly at creation,
so that brokers which report only explicit configs (Tansu) describe them correctly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from goka._config import client_config
from goka.errors import BrokerError, ConfigError, TopicError

__all__ = ["TopicManager"]


class TopicManager:
    """Creates and inspects topics.

    Args:
        brokers: bootstrap servers, a ``"host:port,..."`` string or a list.
        replication_factor: for topics this manager creates; -1 (default) uses the
            broker's ``default.replication.factor``.
        timeout: seconds to wait for each admin request (default 15).
        extra_config: passed to the confluent-kafka AdminClient as is.
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        *,
        replication_factor: int = -1,
        timeout: float = 15.0,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        if replication_factor == 0 or replication_factor < -1:
            raise ConfigError(
                f"replication_factor must be -1 (broker default) or >= 1, got {replication_factor}"
            )
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive seconds, got {timeout}")
        self._admin = AdminClient(client_config(brokers, extra_config))
        self._replication = replication_factor
        self._timeout = timeout

    def partitions(self, topic: str) -> int | None:
        """The partition count of ``topic``, or None if it does not exist."""
        try:
            # all topics: a metadata request naming the topic may auto-create it on some brokers
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise BrokerError(f"cannot read metadata of topic {topic!r}: {exc}") from exc
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            return None
        return len(info.partitions)

    def wait_for(self, topic: str, timeout: float) -> int:
        """Wait until ``topic`` exists (e.g. a table its processor creates); its partitions.

        Raises TopicError after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while (count := self.partitions(topic)) is None:
            if time.monotonic() >= deadline:
                raise TopicError(f"topic {topic!r} did not appear within {timeout}s")
            time.sleep(0.2)
        return count

    def ensure_stream(self, topic: str, partitions: int) -> int:
        """Create ``topic`` with ``partitions`` partitions unless it exists; returns its count.

        An existing topic is accepted whatever its partition count (checked by the callers
        that need co-partitioning).
        """
        return self._ensure(topic, partitions, {})

    def ensure_table(self, topic: str, partitions: int) -> None:
        """Create the compacted table ``topic`` or check that the existing one fits a table.

        Raises TopicError if it exists with another partition count or is not compacted.
        """
        self.ensure_compacted(
            topic,
            partitions,
            why="tables must be co-partitioned with their inputs; recreate the table topic "
            "(or the inputs) with the same partition count",
        )

    def ensure_compacted(self, topic: str, partitions: int, *, why: str) -> None:
        """Create the compacted ``topic`` or check the existing one: its partition count
        (``why`` says why it matters) and that it is compacted."""
        found = self._ensure(topic, partitions, {"cleanup.policy": "compact"})
        if found != partitions:
            raise TopicError(
                f"topic {topic!r} has {found} partitions but {partitions} are needed: {why}"
            )
        policy = self.config(topic).get("cleanup.policy")
        if policy is not None and "compact" not in policy:
            raise TopicError(
                f"topic {topic!r} has cleanup.policy={policy}; it must be compacted or old "
                f"keys get deleted: run kafka-configs --alter --entity-type topics "
                f"--entity-name {topic} --add-config cleanup.policy=compact"
            )

    def delete(self, topics: Iterable[str]) -> None:
        """Delete topics (errors for topics that do not exist are ignored)."""
        names = list(topics)
        if not names:
            return
        for topic, future in self._admin.delete_topics(names).items():
            try:
                future.result(self._timeout)
            except KafkaException as exc:
                if "UNKNOWN_TOPIC" not in str(exc):
                    raise BrokerError(f"cannot delete topic {topic!r}: {exc}") from exc

    def _ensure(self, topic: str, partitions: int, config: dict[str, str]) -> int:
        if partitions < 1:
            raise ConfigError(f"topic {topic!r}: partitions must be >= 1, got {partitions}")
        existing = self.partitions(topic)
        if existing is not None:
            return existing
        new = NewTopic(topic, partitions, self._replication, config=config)
        try:
            self._admin.create_topics([new])[topic].result(self._timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"cannot create topic {topic!r}: {exc}") from exc
        created = self.partitions(topic)
        if created is None:
            raise TopicError(f"topic {topic!r} was created but its metadata is not visible")
        return created

    def config(self, topic: str) -> dict[str, str]:
        """The topic's configs as the broker describes them (name -> value)."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            entries = self._admin.describe_configs([resource])[resource].result(self._timeout)
        except KafkaException as exc:
            raise BrokerError(f"cannot describe configs of topic {topic!r}: {exc}") from exc
        return {name: entry.value for name, entry in entries.items() if entry.value is not None}
