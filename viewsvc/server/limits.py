"""The bounds a table server enforces on every call."""

from __future__ import annotations

from dataclasses import dataclass, fields

from goka.errors import ConfigError

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """Bounds of one server; every field must be positive.

    Args:
        max_request_bytes: largest request message accepted (default 4 MiB).
        max_key_bytes: largest key in a request (default 64 KiB).
        max_keys: most keys in one GetMany (default 10,000).
        scan_cap: most rows one Scan call returns (default 1,000,000); a Scan without a limit
            stops there and returns a page token to continue.
        scan_batch_rows: most rows in one Scan response message (default 1,000).
        scan_batch_bytes: about the most key and value bytes in one Scan message (1 MiB).
        max_concurrent_rpcs: calls served at once, each on a thread of its own (started on
            demand); more are refused with RESOURCE_EXHAUSTED (default 256).
        max_concurrent_streams: HTTP/2 streams per client connection (default 100).
        workers: threads sending the parts of GetMany calls to other members (default 16).
        max_watchers: Watch and WatchMembers streams served at once (default 128); they
            wait on the event loop, holding no thread, but each counts as a call.
        watch_buffer: changes a Watch stream may have waiting to be sent (default 10,000);
            a watcher slower than that is ended with RESOURCE_EXHAUSTED and the offsets to
            resume from, so a slow client never grows the server's memory.
        watch_progress: seconds between the positions a Watch stream sends while no change
            matches (default 1), so that a client resumes from recent offsets.
        default_deadline: seconds a call may take when the caller set no deadline, bounding
            min_offsets waits and forwarding (default 30).
    """

    max_request_bytes: int = 4 << 20
    max_key_bytes: int = 64 << 10
    max_keys: int = 10_000
    scan_cap: int = 1_000_000
    scan_batch_rows: int = 1_000
    scan_batch_bytes: int = 1 << 20
    max_concurrent_rpcs: int = 256
    max_concurrent_streams: int = 100
    workers: int = 16
    max_watchers: int = 128
    watch_buffer: int = 10_000
    watch_progress: float = 1.0
    default_deadline: float = 30.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                raise ConfigError(f"Limits.{field.name} must be positive, got {value}")
        if self.max_watchers >= self.max_concurrent_rpcs:
            raise ConfigError(
                f"Limits.max_watchers ({self.max_watchers}) must be below max_concurrent_rpcs "
                f"({self.max_concurrent_rpcs}): each watch is a call, and reads need some"
            )
