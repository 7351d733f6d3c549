"""A monotonic clock the test moves by hand, in place of a module's ``time.monotonic``."""

from __future__ import annotations

from types import ModuleType

import pytest

__all__ = ["Clock", "install_clock"]


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def install_clock(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> Clock:
    """A Clock that ``module``'s ``time.monotonic()`` reads from now on (the module imports
    ``time``; the patch is undone after the test)."""
    clock = Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    return clock
