"""The user-status group definition; the click-count group is examples.clickcount's."""

from __future__ import annotations

from typing import Any

import goka
from goka import codec

STATUS_TOPIC = "user-status-updates"
STATUS_GROUP = "user-status"
CLICKS_TOPIC = "clicks"
CLICKS_GROUP = "clicks-counter"


def update_status(ctx: goka.Context, update: dict[str, Any], clicks_table: str) -> None:
    """Keep the user's latest status with the user's click count at this moment."""
    status = update.get("status") if isinstance(update, dict) else None
    if not isinstance(status, str):
        raise ValueError(f'a status update is {{"status": "..."}}, got {update!r}')
    ctx.set_value({"status": status, "clicks": ctx.join(clicks_table) or 0})


def define_user_status(
    topic: str = STATUS_TOPIC, group: str = STATUS_GROUP, clicks_group: str = CLICKS_GROUP
) -> goka.GroupGraph:
    """The user-status group: consumes ``topic``, joins ``<clicks_group>-table``.

    ``topic`` must have the partition count of the clicks topic (a join is co-partitioned).
    """
    clicks_table = goka.group_table(clicks_group)

    def on_update(ctx: goka.Context, update: dict[str, Any]) -> None:
        update_status(ctx, update, clicks_table)

    return goka.define_group(
        group,
        goka.input(topic, codec.JSON(), on_update),
        goka.join(clicks_table, codec.Int64()),
        goka.persist(codec.JSON()),
    )
