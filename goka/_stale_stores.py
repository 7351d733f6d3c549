"""No stale local store: a store that no longer matches its table topic is wiped and replayed,
never served.

A local store is a prefix of its topic partition and knows which offset (see
docs/architecture.md). That stops being true when the topic changed under it while it was
away, which recovery checks before it reads on from the store's offset:

- **the offset is outside the partition** (the broker answers a fetch from it with
  OFFSET_OUT_OF_RANGE; the reader's ``auto.offset.reset`` is ``error``): the topic was
  truncated, or recreated with fewer records; records the store may hold are gone;
- **the topic's id differs** from the one recorded with the store: the topic was deleted and
  recreated, even with as many records as before;
- **the store was last in sync longer ago than the topic's ``delete.retention.ms``**: a key
  deleted while it was away had its tombstone compacted away, so reading on would never
  delete it here.

A store that fails a check is wiped and replayed from the start of the partition; it is
logged and counted (``RecoveryReader.wiped``). What cannot be asked (a broker that does not
report topic ids or configs) is not checked; the offset always is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from goka._rebootstrap import Rebootstrap
from goka.storage import Storage

__all__ = ["TopicFacts", "TopicFactsCache", "mismatch"]

_logger = logging.getLogger("goka.table")

_NO_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA"
"""The all-zero Uuid in Kafka's base64 form: a broker that does not know topic ids."""


@dataclass(frozen=True)
class TopicFacts:
    topic_id: str | None
    """None: the broker does not report one."""
    delete_retention_s: float | None
    """The topic's ``delete.retention.ms`` in seconds (None: not reported)."""


class TopicFactsCache:
    """Each table topic's id and delete retention, asked once per topic (an AdminClient of
    the reader's settings)."""

    def __init__(self, config: dict[str, Any], timeout: float) -> None:
        self._config = {k: v for k, v in config.items() if k != "group.id"}
        self._timeout = timeout
        self._admin: AdminClient | None = None
        self._rebootstrap = Rebootstrap()
        self._facts: dict[str, TopicFacts] = {}

    def get(self, topic: str) -> TopicFacts:
        facts = self._facts.get(topic)
        if facts is None:
            facts = self._facts[topic] = TopicFacts(self._topic_id(topic), self._retention(topic))
        return facts

    def forget(self, topic: str) -> None:
        """Ask again next time (the topic may have been recreated)."""
        self._facts.pop(topic, None)

    def admin(self) -> AdminClient:
        """The admin client of the reader's settings (made on first use); given its
        bootstrap servers again if it forgets every broker (see goka._rebootstrap), as the
        reader's ``serve`` polls it."""
        if self._admin is None:
            self._admin = AdminClient({**self._rebootstrap.client_config(), **self._config})
            self._rebootstrap.attach(self._admin, str(self._config.get("bootstrap.servers", "")))
        return self._admin

    def serve(self) -> None:
        """Serves the admin client's events (its statistics)."""
        if self._admin is not None:
            self._admin.poll(0)

    def _topic_id(self, topic: str) -> str | None:
        try:
            futures = self.admin().describe_topics(
                TopicCollection([topic]), request_timeout=self._timeout
            )
            description = futures[topic].result(self._timeout)
        except (KafkaException, TimeoutError) as exc:
            _logger.info("the id of table topic %s is not known (%s): not checked", topic, exc)
            return None
        topic_id = str(description.topic_id) if description.topic_id is not None else ""
        return None if topic_id in ("", _NO_TOPIC_ID) else topic_id

    def _retention(self, topic: str) -> float | None:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        try:
            futures = self.admin().describe_configs([resource], request_timeout=self._timeout)
            configs = futures[resource].result(self._timeout)
            value = configs["delete.retention.ms"].value
            return int(value) / 1000 if value is not None else None
        except (KafkaException, TimeoutError, KeyError, ValueError) as exc:
            _logger.info(
                "delete.retention.ms of table topic %s is not known (%s): not checked", topic, exc
            )
            return None


def mismatch(store: Storage, facts: TopicFacts) -> str | None:
    """Why ``store`` no longer matches its topic as ``facts`` describe it, or None. (An
    offset outside the partition is the broker's to tell: see ``RecoveryReader``.)"""
    origin = store.origin()
    if None not in (origin.topic_id, facts.topic_id) and origin.topic_id != facts.topic_id:
        return f"the topic was recreated (id {facts.topic_id}, the store's {origin.topic_id})"
    if facts.delete_retention_s is not None and origin.synced_at is not None:
        away = time.time() - origin.synced_at
        if away > facts.delete_retention_s:
            return (
                f"it was last in sync {away:.0f}s ago, longer than the topic's "
                f"delete.retention.ms ({facts.delete_retention_s * 1000:.0f}): tombstones may "
                "have been compacted away"
            )
    return None
