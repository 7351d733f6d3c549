"""Command-line pieces shared by ``viewsvc`` and the examples: librdkafka settings as
repeatable ``--config KEY=VALUE`` options, and logging."""

from __future__ import annotations

import logging
import sys

import click

__all__ = ["config_option", "extra_config", "setup_logging"]

config_option = click.option(
    "--config",
    "config",
    multiple=True,
    metavar="KEY=VALUE",
    help="librdkafka setting (repeatable), e.g. session.timeout.ms=6000 or security.protocol=SSL",
)


def extra_config(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=2")`` -> ``{"a": "1", "b": "2"}``; a bad pair is a usage error."""
    config = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        config[name] = value
    return config


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
