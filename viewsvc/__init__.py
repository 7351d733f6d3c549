"""The gRPC layer of goka and its command line.

Serves tables over gRPC (``viewsvc.v1.TableService``) and the membership table
(``discovery.v1.DiscoveryService``); ``viewsvc`` on the command line inspects a deployment:

    viewsvc members --brokers localhost:9092 --watch
"""

__all__: list[str] = []
