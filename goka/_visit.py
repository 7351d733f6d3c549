"""One ``Processor.visit_all`` request: walks the keys of the running partitions in chunks,
between input batches, so visiting never stalls processing."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from goka._partition import PartitionTask
from goka.errors import VisitAborted
from goka.graph import VisitorEdge

if TYPE_CHECKING:
    from goka._commit_protocol import BatchRunner

__all__ = ["Visit"]


class Visit:
    def __init__(self, edge: VisitorEdge, meta: Any) -> None:
        self.edge = edge
        self.meta = meta
        self.visited = 0
        self._positions: dict[int, bytes | None] = {}
        self._done = threading.Event()
        self._error: BaseException | None = None

    def begin(self, tasks: Mapping[int, PartitionTask]) -> None:
        """Fixes the partitions to visit: those running now."""
        self._positions = {p: None for p, task in tasks.items() if task.state == "running"}

    def touches(self, partitions: list[int]) -> bool:
        return any(p in self._positions for p in partitions)

    def step(self, runner: BatchRunner, tasks: Mapping[int, PartitionTask], limit: int) -> bool:
        """Visits up to ``limit`` keys; False once every partition is done."""
        keys: list[tuple[PartitionTask, bytes]] = []
        for partition, position in list(self._positions.items()):
            task = tasks.get(partition)
            if task is None or task.store is None or task.state != "running":
                raise VisitAborted(f"partition {partition} is no longer running here")
            for key, _ in task.store.items(start=position):
                if key == position:
                    continue
                keys.append((task, key))
                if len(keys) >= limit:
                    break
            if keys and keys[-1][0] is task:
                self._positions[partition] = keys[-1][1]
            if len(keys) >= limit:
                break
            del self._positions[partition]  # exhausted
        self.visited += runner.visit(self.edge.callback, self.meta, keys)
        if self._positions:
            return True
        self._done.set()
        return False

    def abort(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    def wait(self, timeout: float | None) -> int:
        if not self._done.wait(timeout):
            raise TimeoutError(f"visit {self.edge.name!r} did not finish within {timeout}s")
        if self._error is not None:
            raise self._error
        return self.visited
