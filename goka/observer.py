"""Hooks through which other packages follow a processor's life, without goka knowing them.

``discovery.DiscoveryConfig`` is such a plugin: ``Processor(..., discovery=DiscoveryConfig())``
calls its ``attach(processor)`` and then tells the returned observer about the processor's
start, every change of its partitions, and its stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from goka.processor import Processor

__all__ = ["ProcessorObserver", "ProcessorPlugin"]


class ProcessorObserver(Protocol):
    """Told about one processor. Every method is called from the processor's thread and must
    return at once (hand slow work to a thread of your own)."""

    def started(self) -> None:
        """The processor checked its topics and is about to join its consumer group."""

    def changed(self) -> None:
        """The assignment changed, or a partition changed state (e.g. recovering to running)."""

    def stopped(self) -> None:
        """The processor left its group and released its partitions (after a stop or a
        failure)."""

    def standby_partitions(self) -> set[int] | None:
        """The partitions this instance should keep as hot standbys, or None for all that
        it does not own. Asked on every turn of the processing loop: keep it cheap."""


class ProcessorPlugin(Protocol):
    """Creates the observer of a processor; passed as ``Processor(..., discovery=plugin)``."""

    def attach(self, processor: Processor) -> ProcessorObserver: ...
