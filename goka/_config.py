"""confluent-kafka client configuration shared by emitters, processors and views."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError

from goka._log_repeats import ClientLog, Repeats
from goka.errors import ConfigError

__all__ = [
    "ClientErrors",
    "check_legal_name",
    "client_config",
    "normalize_brokers",
    "static_membership",
]

_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
"""What Kafka accepts as a topic name and as a ``group.instance.id``."""

_logger = logging.getLogger("goka.kafka")


class _DropRoleConfigWarnings(logging.Filter):
    """``extra_config`` goes to every client; librdkafka warns when a consumer setting reaches
    a producer (and vice versa). Those warnings are expected, so they are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (
            "CONFWARN" in text and ("consumer property" in text or "producer property" in text)
        )


_logger.addFilter(_DropRoleConfigWarnings())


def normalize_brokers(brokers: str | Iterable[str]) -> str:
    """``"a:9092,b:9092"`` or ``["a:9092", "b:9092"]`` -> ``"a:9092,b:9092"``."""
    items = brokers.split(",") if isinstance(brokers, str) else list(brokers)
    cleaned = [b.strip() for b in items if isinstance(b, str) and b.strip()]
    if not cleaned or len(cleaned) != len(items):
        raise ConfigError(
            f"brokers {brokers!r} is not a list of host:port addresses, "
            "e.g. 'localhost:9092' or ['k1:9092', 'k2:9092']"
        )
    return ",".join(cleaned)


def check_legal_name(subject: str, name: object, kind: str) -> str:
    """``name`` if Kafka accepts it as a topic name or group instance id; else ConfigError
    (``"<subject> <name> is not a valid Kafka <kind>: ..."``)."""
    if not isinstance(name, str) or not _LEGAL_NAME.match(name) or name in (".", ".."):
        raise ConfigError(
            f"{subject} {name!r} is not a valid Kafka {kind}: use 1-249 characters "
            "from a-z, A-Z, 0-9, '.', '_' and '-'"
        )
    return name


def static_membership(group_instance_id: str | None) -> dict[str, str]:
    """The consumer settings of static group membership (KIP-345); none without an id."""
    if group_instance_id is None:
        return {}
    check_legal_name("group_instance_id", group_instance_id, "group instance id")
    return {"group.instance.id": group_instance_id}


_LOGIN_REFUSED = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})


class ClientErrors:
    """A client's ``error_cb``: logs each error (repeats folded: goka._log_repeats), and keeps
    the last one, and a refused login, for the error that ends a request (a refused login
    shows only here: the request itself just fails to reach a broker; see
    ``goka._kafka_errors.admin_error``)."""

    def __init__(self) -> None:
        self._repeats = Repeats()
        self.last: Any = None
        """The last error reported (a KafkaError), or None."""
        self.refusal: KafkaError | None = None
        """The refused login behind the latest errors: the last error, or the last before
        the ALL_BROKERS_DOWN errors that follow from it (librdkafka reports both from one
        poll). librdkafka retries a refused login, but no retry fixes wrong credentials."""

    def __call__(self, error: Any) -> None:
        self.last = error
        code = error.code() if isinstance(error, KafkaError) else None
        if code in _LOGIN_REFUSED:
            self.refusal = error
        elif code != KafkaError._ALL_BROKERS_DOWN:
            self.refusal = None
        message = self._repeats.admit(logging.WARNING, f"kafka client error: {error}")
        if message is not None:
            _logger.warning("%s", message)


def client_config(
    brokers: str | Iterable[str],
    extra_config: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A client config: bootstrap servers, our ``defaults``, then ``extra_config`` on top."""
    config: dict[str, Any] = {
        "bootstrap.servers": normalize_brokers(brokers),
        "error_cb": ClientErrors(),
        "logger": ClientLog(_logger),
    }
    config.update(defaults or {})
    if extra_config is not None:
        if not isinstance(extra_config, Mapping):
            raise ConfigError(
                f"extra_config must be a dict of librdkafka settings, got {extra_config!r}"
            )
        config.update(extra_config)
    return config
