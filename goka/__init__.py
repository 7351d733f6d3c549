"""Goka for Python: stream processing on Kafka with per-key state tables.

graph = goka.define_group(
    "clicks-counter",
    goka.input("clicks", goka.codec.String(), count),
    goka.persist(goka.codec.Int64()),
)
goka.Processor(brokers, graph, storage=goka.LMDBStorage("/var/lib/goka")).run()
"""

from goka import codec
from goka.context import Context
from goka.emitter import Delivery, Emitter
from goka.errors import GokaError
from goka.graph import (
    Group,
    GroupGraph,
    Stream,
    Table,
    dead_letter,
    define_group,
    group_table,
    input,
    join,
    lookup,
    loop,
    loop_topic,
    output,
    persist,
    visitor,
)
from goka.processor import Processor
from goka.storage import LMDBStorage, MemoryStorage
from goka.topics import TopicManager
from goka.view import View

__version__ = "0.1.0"
"""The version of the goka-py distribution (pyproject.toml reads it from here)."""

__all__ = [
    "Context",
    "Delivery",
    "Emitter",
    "GokaError",
    "Group",
    "GroupGraph",
    "LMDBStorage",
    "MemoryStorage",
    "Processor",
    "Stream",
    "Table",
    "TopicManager",
    "View",
    "__version__",
    "codec",
    "dead_letter",
    "define_group",
    "group_table",
    "input",
    "join",
    "lookup",
    "loop",
    "loop_topic",
    "output",
    "persist",
    "visitor",
]
