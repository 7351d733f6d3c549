"""The gRPC layer of goka and its command line.

Serves tables over gRPC (``viewsvc.v1.TableService``) and the membership table
(``discovery.v1.DiscoveryService``); :class:`Client` reads them, straight from a node holding
the key; :class:`ServeConfig` serves a processor's table, :class:`ViewServer` and
:class:`Router` are the serving nodes that are not processors; ``viewsvc`` on the command
line inspects a deployment:

    viewsvc members --brokers localhost:9092 --watch
    viewsvc get --target localhost:50051 --table clicks-counter-table user-1
"""

from goka import __version__
from goka.errors import ReadError
from viewsvc.client import (
    Change,
    Client,
    Consistency,
    Entry,
    GetResult,
    ServedTable,
    Source,
    WatchIterator,
)
from viewsvc.nodes.processor_plugin import ServeConfig
from viewsvc.nodes.standalone import NodeConfig, Router, ViewServer
from viewsvc.server.limits import Limits
from viewsvc.server.security import ServerSecurity

__all__ = [
    "Change",
    "Client",
    "Consistency",
    "Entry",
    "GetResult",
    "Limits",
    "NodeConfig",
    "ReadError",
    "Router",
    "ServeConfig",
    "ServedTable",
    "ServerSecurity",
    "Source",
    "ViewServer",
    "WatchIterator",
    "__version__",
]
