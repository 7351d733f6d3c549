"""A click-count deployment serving its table over gRPC, as OS processes: processors with
``--serve``, a view server (``viewsvc serve-view``) and a router (``viewsvc route``), all on
127.0.0.1 and announcing on a discovery topic of their own.

    deployment = Deployment(brokers, ProcessGroup(), tmp_dir, partitions=6)
    deployment.start(processors=3)          # processors first: the view learns the codecs
    deployment.wait_settled(90)             # every partition running, every node SERVING
    ...
    deployment.close()                      # kills the processes, deletes the topics
"""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

import goka
from discovery import Membership
from tests.conftest import ProcessGroup, unique
from tests.support.clickcount import start_member
from viewsvc.wire.channels import open_channel

__all__ = [
    "Deployment",
    "Labels",
    "Samples",
    "ServingNode",
    "free_port",
    "health",
    "scrape",
    "wait_until",
]

HEARTBEAT = "0.5"
RELEASED = re.compile(r"group \S+: partitions \[([\d, ]*)\] (?:revoked|lost)")
"""What goka.processor logs (at INFO) when a rebalance takes partitions from a member."""
SERVING = health_pb2.HealthCheckResponse.SERVING


Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``: (sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def free_port() -> int:
    """A port the OS has free on 127.0.0.1 now (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls ``condition`` every 0.1 s; returns the seconds it took, fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out after {timeout}s: {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def health(endpoint: str, timeout: float = 2.0) -> int | None:
    """The node's grpc.health.v1 status (overall), or None if it cannot be asked."""
    with open_channel(endpoint) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return None
    status: int = response.status
    return status


@dataclass
class ServingNode:
    name: str
    """``processor-<i>``, ``view`` or ``router``."""
    endpoint: str
    proc: subprocess.Popen[str]
    member_id: str = ""
    """Known from the ``serving`` line for views and routers; from the membership for
    processors (see ``Deployment.processor_ids``)."""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def serving_line(
    proc: subprocess.Popen[str], timeout: float, log: Path | None = None
) -> tuple[str, str]:
    """(member id, endpoint) from ``serving <member id> on <host:port>`` on stdout; ``log``:
    where its stderr goes (else a pipe)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("serving "):
        proc.kill()
        _, err = proc.communicate(timeout=30)
        err = log.read_text() if log is not None else err
        raise AssertionError(f"no 'serving' line within {timeout}s: {line!r}\n{err[-3000:]}")
    member_id, _, endpoint = line.split()[1:]
    return member_id, endpoint


class Deployment:
    """The processes of one deployment on unique topics; ``close()`` removes all of it."""

    def __init__(
        self, brokers: str, processes: ProcessGroup, root: Path, *, partitions: int
    ) -> None:
        self.brokers = brokers
        self.processes = processes
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.partitions = partitions
        self.topic = unique("clicks")
        self.group = unique("counter")
        self.table = goka.group_table(self.group)
        self.discovery_topic = unique("discovery")
        self.nodes: dict[str, ServingNode] = {}
        self._processor_args: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        """Processor name -> (endpoint, arguments, stats), to start it again the same."""
        self.metrics_ports: dict[str, int] = {}
        self._topics = goka.TopicManager(brokers)
        self._topics.ensure_stream(self.topic, partitions)
        self.membership = Membership(brokers, self.discovery_topic).start()

    def _common(self) -> tuple[str, ...]:
        return ("--discovery-topic", self.discovery_topic, "--heartbeat", HEARTBEAT)

    def log(self, name: str) -> Path:
        """Where the stderr of node ``name`` goes (a processor's with goka's INFO messages)."""
        return self.root / f"{name}.log"

    def start_processors(
        self,
        count: int,
        *args: str,
        stats: bool = False,
        static: bool = False,
        metrics: bool = False,
    ) -> None:
        """``count`` more processors (``processor-<i>``, numbered on from those started
        before), with ``args`` added to each one's command line; with ``stats`` each writes
        its stats to ``stats_file(name)``; with ``static`` its name is its group instance
        id (static membership, as a StatefulSet's pod names); with ``metrics`` each serves
        them on a port of its own (see ``metrics_of``)."""
        first = len(self.processors())
        for i in range(first, first + count):
            name = f"processor-{i}"
            member_args = (*args, "--group-instance-id", name) if static else args
            if metrics:
                self.metrics_ports[name] = free_port()
                member_args = (*member_args, "--metrics-port", str(self.metrics_ports[name]))
            self._processor_args[name] = (f"127.0.0.1:{free_port()}", member_args, stats)
            self._start_processor(name)

    def _start_processor(self, name: str) -> None:
        endpoint, args, stats = self._processor_args[name]
        proc = start_member(
            self.processes, self.brokers, self.topic, self.group,
            self.root / f"store-{name.removeprefix('processor-')}",
            "--serve", endpoint, "--advertise", endpoint, *self._common(), *args,
            stats_file=self.stats_file(name) if stats else None, log=self.log(name), verbose=True,
        )  # fmt: skip
        self.nodes[name] = ServingNode(name, endpoint, proc)

    def released_partitions(self, name: str, since: int = 0) -> set[int]:
        """The partitions processor ``name`` logged as revoked or lost, in its log from byte
        ``since`` on (its size at an earlier moment) to now."""
        with self.log(name).open("rb") as log:
            log.seek(since)
            found = RELEASED.findall(log.read().decode(errors="replace"))
        return {int(number) for numbers in found for number in numbers.split(",") if number}

    def restart_processor(self, name: str, timeout: float) -> None:
        """SIGTERMs processor ``name``, checks that it stopped cleanly, and starts it again:
        the same endpoint, store and arguments, as a StatefulSet restarts a pod."""
        proc = self.nodes[name].proc
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout)
        assert code == 0, f"{name} exited with {code}: {self.log(name).read_text()[-3000:]}"
        self.stats_file(name).unlink(missing_ok=True)  # what the new one writes, not the old
        self._start_processor(name)

    def stats_file(self, name: str) -> Path:
        """Where processor ``name`` started with ``stats`` writes its stats."""
        return self.root / f"{name}.stats.json"

    def start_view_and_router(
        self,
        *view_args: str,
        views: int = 1,
        metrics: bool = False,
        router_args: tuple[str, ...] = (),
        timeout: float = 60.0,
    ) -> None:
        """Starts ``views`` view pods (named ``view``, or ``view-<i>`` when more than one,
        with ``view_args`` added; with ``metrics`` each serves them on a port of its own,
        see ``metrics_of``) and a router (with ``router_args``), then waits for their
        ``serving`` lines. Start them once the processors announce the table, so the views
        learn its codecs."""
        started = []
        for i in range(views):
            name = "view" if views == 1 else f"view-{i}"
            args = view_args
            if metrics:
                self.metrics_ports[name] = free_port()
                args = (*args, "--metrics-port", str(self.metrics_ports[name]))
            proc = self.processes.start(
                "-m", "viewsvc", "serve-view", "--brokers", self.brokers, "--table", self.table,
                "--storage", str(self.root / name), "--listen", "127.0.0.1:0", *self._common(),
                *args, log=self.log(name),
            )  # fmt: skip
            started.append((name, proc))
        router = self.processes.start(
            "-m", "viewsvc", "route", "--brokers", self.brokers, "--listen", "127.0.0.1:0",
            *self._common(), *router_args, log=self.log("router"),
        )  # fmt: skip
        for name, proc in [*started, ("router", router)]:
            member_id, endpoint = serving_line(proc, timeout, self.log(name))
            self.nodes[name] = ServingNode(name, endpoint, proc, member_id)

    def views(self) -> list[ServingNode]:
        return [node for name, node in self.nodes.items() if name.startswith("view")]

    def metrics_of(self, name: str) -> Samples:
        """The Prometheus samples node ``name`` serves (started with ``metrics``)."""
        return scrape(self.metrics_ports[name])

    def processors(self) -> list[ServingNode]:
        return [node for name, node in self.nodes.items() if name.startswith("processor-")]

    def processor_ids(self) -> dict[str, str]:
        """Endpoint -> member id of the processors the membership lists."""
        ours = {node.endpoint for node in self.processors()}
        return {m.endpoint: m.member_id for m in self.membership.members() if m.endpoint in ours}

    def active_owners(self) -> dict[int, str]:
        """Partition -> endpoint of its running active owner with lag 0 (if it has one)."""
        owners = {}
        for partition in range(self.partitions):
            found = self.membership.owners(self.table, partition)
            if found and (found[0].kind, found[0].state, found[0].lag) == ("active", "running", 0):
                owners[partition] = found[0].endpoint
        return owners

    def settled(self) -> bool:
        """Every partition has a running active owner that is a live processor, every view
        runs every partition, no dead node is announced, and every live node is SERVING."""
        live = {node.endpoint for node in self.nodes.values() if node.alive}
        announced = {m.endpoint for m in self.membership.members()}
        owners = self.active_owners()
        if len(owners) != self.partitions or not set(owners.values()) <= live:
            return False
        if announced != live:
            return False
        processors = [n.endpoint for n in self.processors() if n.alive]
        if len(processors) <= self.partitions and set(processors) != set(owners.values()):
            return False  # a processor without partitions: the group is still rebalancing
        for view in self.views():  # each holds every partition: one pod, or R = pods
            replicas = [
                o
                for p in range(self.partitions)
                for o in self.membership.owners(self.table, p)
                if o.endpoint == view.endpoint and o.state == "running"
            ]
            if len(replicas) != self.partitions:
                return False
        return all(health(endpoint) == SERVING for endpoint in live)

    def wait_settled(self, timeout: float) -> float:
        return wait_until(self.settled, timeout, f"deployment to settle: {self.describe()}")

    def describe(self) -> str:
        dead = [name for name, node in self.nodes.items() if not node.alive]
        return f"owners {self.active_owners()}, dead {dead}, nodes {self.nodes}"

    def close(self) -> None:
        self.processes.cleanup()
        self.membership.stop()
        self._topics.delete([self.topic, self.table, self.discovery_topic])
