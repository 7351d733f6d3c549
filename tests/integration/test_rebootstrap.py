"""librdkafka#5301 on real Kafka: a client that asks for metadata while the whole cluster
stops cleanly can be answered "no brokers" by a broker in controlled shutdown; it forgets
every broker it knew and never connects again, the cluster back or not. The clients goka
watches (its consumers through ``goka._reachability``, its emitters and announcers directly)
are given their bootstrap servers again (``goka._rebootstrap``) and talk to the cluster
again once it is back.

Which clients get such an answer is a race, so the cluster is stopped again until clients
of every kind were left with no broker (most often once)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer

from goka._reachability import Reachability
from goka._rebootstrap import Rebootstrap
from goka.localkafka import LocalKafka
from goka.pytest_plugin import local_kafka
from tests.support.serving import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CLIENTS = 8
"""Of each kind: goka's consumers and producers (re-bootstrapped), plain librdkafka ones."""
CYCLES = 15
"""Stops of the cluster at most: each leaves about a third of the clients with no broker."""
TOPIC = "rebootstrap"
WAIT = 60.0


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with local_kafka() as cluster:
        yield cluster


class Client:
    """A producer asking for the topic's metadata over and over, its statistics kept (what
    is watched is the same for every kind of client). ``watch``: how goka watches it, as a
    consumer (``reachability``), as a producer (``rebootstrap``), or not at all (None)."""

    def __init__(self, bootstrap: str, watch: str | None) -> None:
        reachability = Reachability() if watch == "reachability" else None
        self.rebootstrap = reachability.rebootstrap if reachability else None
        if watch == "rebootstrap":
            self.rebootstrap = Rebootstrap()
        self.brokers: dict[str, str] | None = None
        """The last statistics' brokers (name -> source); None before the first."""
        self._lock = threading.Lock()
        watching = reachability or self.rebootstrap
        stats = watching.client_config() if watching is not None else {}
        chained = stats.get("stats_cb")

        def on_statistics(document: str) -> None:
            brokers = json.loads(document)["brokers"].values()
            with self._lock:
                self.brokers = {b["name"]: b["source"] for b in brokers}
            if chained is not None:
                chained(document)

        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "log_level": 0,
            "statistics.interval.ms": 100,
            "stats_cb": on_statistics,
        }
        self.producer = Producer(config)
        if reachability is not None:
            reachability.attach(self.producer, config)
        elif self.rebootstrap is not None:
            self.rebootstrap.attach(self.producer, bootstrap)

    def forgot_every_broker(self) -> bool:
        with self._lock:
            known = self.brokers
        return known is not None and not {"configured", "learned"} & {*known.values()}

    def answers(self) -> bool:
        """Whether the cluster answers its metadata request now."""
        try:
            self.producer.list_topics(TOPIC, timeout=0.2)
        except KafkaException:
            return False
        return True

    def serve(self, seconds: float) -> None:
        self.producer.poll(seconds)


def ask_until(clients: list[Client], stop: threading.Event) -> list[threading.Thread]:
    def ask(client: Client) -> None:
        while not stop.is_set():
            client.answers()

    threads = [threading.Thread(target=ask, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    return threads


def forgot(clients: list[Client]) -> list[Client]:
    return [c for c in clients if c.forgot_every_broker()]


def re_added(clients: list[Client]) -> list[Client]:
    """The clients given their bootstrap servers again."""
    return [c for c in clients if c.rebootstrap is not None and c.rebootstrap.added]


def serve_all(clients: list[Client], seconds: float) -> None:
    for client in clients:
        client.serve(seconds / len(clients))


def test_a_client_that_forgot_every_broker_is_given_its_bootstrap_servers_again(
    kafka: LocalKafka,
) -> None:
    consumers = [Client(kafka.bootstrap, "reachability") for _ in range(CLIENTS)]
    producers = [Client(kafka.bootstrap, "rebootstrap") for _ in range(CLIENTS)]
    plain = [Client(kafka.bootstrap, None) for _ in range(CLIENTS)]
    guarded = consumers + producers
    clients = guarded + plain
    try:
        wait_until(lambda: all(c.answers() for c in clients), WAIT, "every client answered")

        def guarded_back() -> bool:
            serve_all(guarded, 0.1)  # their statistics: where a lost broker list is seen
            return all(c.answers() for c in guarded)

        for _ in range(CYCLES):
            stop = threading.Event()
            threads = ask_until(clients, stop)
            kafka.stop_all()
            stop.set()
            for thread in threads:
                thread.join(10)
            serve_all(clients, 1.0)  # the statistics of the stopped cluster
            kafka.start_all()
            if re_added(consumers) and re_added(producers) and forgot(plain):
                break
            wait_until(guarded_back, WAIT, "the goka clients answer again")
        lost_plain = forgot(plain)
        assert lost_plain, (
            f"no plain client forgot every broker in {CYCLES} stops of the cluster: if "
            "librdkafka#5301 is fixed, goka._rebootstrap can go"
        )
        assert re_added(consumers), f"no goka consumer forgot every broker in {CYCLES} stops"
        assert re_added(producers), f"no goka producer forgot every broker in {CYCLES} stops"

        wait_until(guarded_back, WAIT, "every goka client answers again")
        serve_all(lost_plain, 2.0)
        still_lost = [c for c in lost_plain if c.forgot_every_broker() and not c.answers()]
        assert still_lost == lost_plain, "a plain client that forgot every broker came back"
    finally:
        for client in clients:
            client.producer.flush(0)
