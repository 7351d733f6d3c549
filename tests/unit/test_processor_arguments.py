"""Arguments the Processor refuses before it runs, naming what to pass instead."""

from __future__ import annotations

import re

import pytest

import goka
from goka import codec
from goka.errors import ConfigError


@pytest.mark.parametrize(
    ("argument", "example"),
    [("discovery", "DiscoveryConfig(advertise="), ("serve", "ServeConfig(listen=")],
)
def test_a_plugin_that_is_no_plugin_is_refused(argument: str, example: str) -> None:
    graph = goka.define_group("g", goka.input("t", codec.String(), lambda ctx, msg: None))
    with pytest.raises(ConfigError, match=rf"{argument} must be a plugin .*{re.escape(example)}"):
        goka.Processor("127.0.0.1:1", graph, **{argument: "topic"})  # type: ignore[arg-type]
