"""The click-count group definition."""

from __future__ import annotations

import goka
from goka import codec


def count_click(ctx: goka.Context, msg: str) -> None:
    """Add one to the clicking user's count."""
    ctx.set_value((ctx.value() or 0) + 1)


def define_clickcount(topic: str, group: str) -> goka.GroupGraph:
    return goka.define_group(
        group,
        goka.input(topic, codec.String(), count_click),
        goka.persist(codec.Int64()),
    )
