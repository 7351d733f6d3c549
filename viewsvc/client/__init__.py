"""The smart client: follows the membership, routes each read to a holder of its partition,
fails over within one deadline. Never imports ``viewsvc.server``."""

from viewsvc.client.calls import ScanIterator
from viewsvc.client.client import Client
from viewsvc.client.results import Entry, GetResult, ReadError, ServedTable, Source
from viewsvc.client.watching import Change, WatchIterator
from viewsvc.wire.read_options import Consistency

__all__ = [
    "Change",
    "Client",
    "Consistency",
    "Entry",
    "GetResult",
    "ReadError",
    "ScanIterator",
    "ServedTable",
    "Source",
    "WatchIterator",
]
