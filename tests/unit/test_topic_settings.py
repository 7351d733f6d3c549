"""Settings of the topics a processor or TopicManager creates are checked when it is built,
before anything reaches a broker."""

from __future__ import annotations

import pytest

import goka
from goka import codec
from goka.errors import ConfigError

BROKERS = "127.0.0.1:1"  # never contacted


def count(ctx: goka.Context, _: str) -> None:
    ctx.set_value((ctx.value() or 0) + 1)


def test_topic_settings_are_checked_before_anything_is_created() -> None:
    graph = goka.define_group("g", goka.input("t", codec.String(), count))
    with pytest.raises(ConfigError, match="min_insync_replicas=3 exceeds replication_factor=2"):
        goka.Processor(BROKERS, graph, replication_factor=2, min_insync_replicas=3)
    with pytest.raises(ConfigError, match="tables must be cleanup.policy=compact"):
        goka.Processor(BROKERS, graph, table_config={"cleanup.policy": "compact,delete"})
    with pytest.raises(ConfigError, match="replication_factor must be -1"):
        goka.TopicManager(BROKERS, replication_factor=0)
    with pytest.raises(ConfigError, match="min_insync_replicas must be >= 1"):
        goka.TopicManager(BROKERS, min_insync_replicas=0)
