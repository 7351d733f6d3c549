"""The web monitor and query page of a node (``--http-port``)."""

from viewsvc.web.monitor import Monitor, NodeSource

__all__ = ["Monitor", "NodeSource"]
