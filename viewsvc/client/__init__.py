"""The smart client: follows the membership, routes each read to a holder of its partition,
fails over within one deadline. Never imports ``viewsvc.server``."""

from viewsvc.client.client import (
    Client,
    Consistency,
    Entry,
    GetResult,
    ReadError,
    ScanIterator,
    ServedTable,
    Source,
)

__all__ = [
    "Client",
    "Consistency",
    "Entry",
    "GetResult",
    "ReadError",
    "ScanIterator",
    "ServedTable",
    "Source",
]
