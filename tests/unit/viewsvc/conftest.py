"""The ``start`` fixture of the server tests (see ``table_servers``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.unit.viewsvc.table_servers import Node, servers


@pytest.fixture
def start() -> Iterator[Callable[..., Node]]:
    """Starts TableServers for the test (``start(member_id, *partitions, **options)``);
    stops them after it."""
    with servers() as start_node:
        yield start_node
