"""The gRPC layer of goka and its command line.

Serves tables over gRPC (``viewsvc.v1.TableService``) and the membership table
(``discovery.v1.DiscoveryService``); :class:`Client` reads them, straight from a node holding
the key; ``viewsvc`` on the command line inspects a deployment:

    viewsvc members --brokers localhost:9092 --watch
    viewsvc get --target localhost:50051 --table clicks-counter-table user-1
"""

from goka import __version__
from viewsvc.client import Client

__all__ = ["Client", "__version__"]
