"""Creating and checking topics: Goka's TopicManager.

Tables (and the discovery topic) are compacted topics: ``cleanup.policy`` exactly
``compact``, since a ``delete`` policy, also in ``compact,delete``, drops keys whose last
update is older than the retention. Every config a table relies on is set explicitly at
creation, and an existing topic is checked before it is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, ConfigResource, NewTopic

from goka._config import ClientErrors, client_config
from goka._kafka_errors import admin_error, kafka_error
from goka.errors import BrokerError, ConfigError, TopicError

__all__ = ["TABLE_TOPIC_CONFIG", "TopicManager", "check_topic_settings"]

T = TypeVar("T")

TABLE_TOPIC_CONFIG: Mapping[str, str] = {
    "cleanup.policy": "compact",
    # the active segment is never compacted: roll it every 6 hours (Kafka: 7 days), so a
    # recovering table replays at most that much history of its hot keys
    "segment.ms": str(6 * 3600 * 1000),
    # clean once a tenth of the log is overwritten (Kafka: half), keeping recovery close
    # to the table's size
    "min.cleanable.dirty.ratio": "0.1",
}
"""The configs of table topics this library creates (``table_config`` adds to them)."""


class TopicManager:
    """Creates and inspects topics.

    Args:
        brokers: bootstrap servers, a ``"host:port,..."`` string or a list.
        replication_factor: for topics this manager creates; -1 (default) uses the
            broker's ``default.replication.factor``.
        min_insync_replicas: ``min.insync.replicas`` of topics this manager creates
            (default None: the broker's); at most ``replication_factor``.
        table_config: topic configs for the tables (and the discovery topic) this manager
            creates, on top of :data:`TABLE_TOPIC_CONFIG`, e.g. ``{"segment.ms": "60000"}``;
            ``cleanup.policy`` cannot be changed.
        timeout: seconds to wait for each admin request (default 15).
        extra_config: passed to the confluent-kafka AdminClient as is.
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        *,
        replication_factor: int = -1,
        min_insync_replicas: int | None = None,
        table_config: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        check_topic_settings(replication_factor, min_insync_replicas, table_config)
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive seconds, got {timeout}")
        self._client_errors = ClientErrors()
        config = client_config(brokers, extra_config, {"error_cb": self._client_errors})
        self._servers: str = config["bootstrap.servers"]
        self._admin = AdminClient(config)
        self._replication = replication_factor
        self._topic_config: dict[str, str] = {}
        if min_insync_replicas is not None:
            self._topic_config["min.insync.replicas"] = str(min_insync_replicas)
        self._table_config = {**TABLE_TOPIC_CONFIG, **(table_config or {})}
        self._timeout = timeout

    def _error(self, exc: KafkaException, doing: str) -> BrokerError:
        self._admin.poll(0)  # serves the error callbacks: a refused login shows there
        return admin_error(exc, doing, self._servers, self._timeout, self._client_errors)

    def _request(
        self,
        call: Callable[[], T],
        doing: str,
        transient: Callable[[KafkaException], bool] = lambda exc: False,
    ) -> T:
        """``call()``, again while it fails on a broker handle librdkafka destroyed (it
        replaces the bootstrap servers' handles once it has learned the cluster's, and drops
        those of brokers the cluster fenced: what was in flight on them fails) or with an
        error ``transient`` accepts, up to the timeout; then BrokerError saying ``doing``."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return call()
            except KafkaException as exc:
                error = kafka_error(exc)
                destroyed = error is not None and error.code() == KafkaError._DESTROY_BROKER
                if not (destroyed or transient(exc)) or time.monotonic() >= deadline:
                    raise self._error(exc, doing) from exc
                time.sleep(0.05)

    def _metadata(self, topic: str | None, doing: str) -> ClusterMetadata:
        """The cluster's metadata (of ``topic`` only, or of all topics), asked a second at a
        time: between the tries the client's error callbacks are served, so a login the
        brokers refuse ends the request at once, where librdkafka would retry it until the
        timeout (the refusal shows only in the callback)."""
        deadline = time.monotonic() + self._timeout
        before = self._client_errors.refusal

        def ask() -> ClusterMetadata:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    return self._admin.list_topics(
                        topic=topic, timeout=max(0.01, min(1.0, remaining))
                    )
                except KafkaException as exc:
                    error = kafka_error(exc)
                    timed_out = error is not None and error.code() == KafkaError._TIMED_OUT
                    if not timed_out or remaining <= 1.0:
                        raise
                    self._admin.poll(0)
                    refusal = self._client_errors.refusal
                    if refusal is not None and refusal is not before:
                        raise

        return self._request(ask, doing)

    def partitions(self, topic: str) -> int | None:
        """The partition count of ``topic``, or None if it does not exist."""
        # all topics: a metadata request naming the topic auto-creates it on brokers with
        # auto.create.topics.enable=true (Kafka's default)
        metadata = self._metadata(None, f"cannot read metadata of topic {topic!r}")
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
        (``why`` says why it matters) and that its ``cleanup.policy`` is exactly
        ``compact``."""
        found = self._ensure(topic, partitions, self._table_config)
        if found != partitions:
            raise TopicError(
                f"topic {topic!r} has {found} partitions but {partitions} are needed: {why}"
            )
        policy = self.config(topic).get("cleanup.policy")
        if policy != "compact":
            described = "no cleanup.policy" if policy is None else f"cleanup.policy={policy}"
            raise TopicError(
                f"topic {topic!r} has {described}, but it must be exactly compact: a delete "
                f"policy drops keys whose last update is older than the retention. Fix it "
                f"with kafka-configs.sh --alter --entity-type topics --entity-name {topic} "
                f"--add-config cleanup.policy=compact"
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
                    raise self._error(exc, f"cannot delete topic {topic!r}") from exc

    def _ensure(self, topic: str, partitions: int, config: Mapping[str, str]) -> int:
        if partitions < 1:
            raise ConfigError(f"topic {topic!r}: partitions must be >= 1, got {partitions}")
        existing = self.partitions(topic)
        if existing is not None:
            return existing
        new = NewTopic(
            topic, partitions, self._replication, config={**self._topic_config, **config}
        )

        def create() -> None:
            try:
                self._admin.create_topics([new])[topic].result(self._timeout)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):  # (an earlier attempt made it)
                    raise

        self._request(create, f"cannot create topic {topic!r}")
        return self._wait_visible(topic)

    def _wait_visible(self, topic: str) -> int:
        """The partition count of a topic just created, once the metadata shows it with a
        leader for every partition: on a cluster, the broker that answers may learn of a
        new topic after the controller confirmed its creation."""
        deadline = time.monotonic() + self._timeout
        while True:
            info = self._metadata(topic, f"cannot read metadata of topic {topic!r}").topics[topic]
            led = info.error is None and all(p.leader >= 0 for p in info.partitions.values())
            if led and info.partitions:
                return len(info.partitions)
            if time.monotonic() >= deadline:
                raise TopicError(
                    f"topic {topic!r} was created but its metadata did not show a leader for "
                    f"every partition within {self._timeout}s"
                )
            time.sleep(0.05)

    def config(self, topic: str) -> dict[str, str]:
        """The topic's configs as the broker describes them (name -> value)."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = self._request(
            lambda: self._admin.describe_configs([resource])[resource].result(self._timeout),
            f"cannot describe configs of topic {topic!r}",
            # a broker that has not yet learned of a topic just created says it is unknown
            lambda exc: "UNKNOWN_TOPIC" in str(exc),
        )
        return {name: entry.value for name, entry in entries.items() if entry.value is not None}


def check_topic_settings(
    replication_factor: int,
    min_insync_replicas: int | None,
    table_config: Mapping[str, str] | None = None,
) -> None:
    """Raise ConfigError unless the settings of topics to be created make sense."""
    if table_config is not None:
        if not isinstance(table_config, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table_config.items()
        ):
            raise ConfigError(
                f"table_config must map config names to strings, got {table_config!r}"
            )
        if table_config.get("cleanup.policy", "compact") != "compact":
            raise ConfigError(
                f"table_config sets cleanup.policy={table_config['cleanup.policy']}; tables "
                "must be cleanup.policy=compact or old keys get deleted"
            )
    if replication_factor == 0 or replication_factor < -1:
        raise ConfigError(
            f"replication_factor must be -1 (broker default) or >= 1, got {replication_factor}"
        )
    if min_insync_replicas is None:
        return
    if min_insync_replicas < 1:
        raise ConfigError(
            f"min_insync_replicas must be >= 1 (or None: broker default), got {min_insync_replicas}"
        )
    if replication_factor != -1 and min_insync_replicas > replication_factor:
        raise ConfigError(
            f"min_insync_replicas={min_insync_replicas} exceeds replication_factor="
            f"{replication_factor}: no write could ever be acknowledged by acks=all"
        )
