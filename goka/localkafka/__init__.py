"""A real Apache Kafka (4.x, KRaft) on this machine's loopback, for tests and benchmarks.

One combined broker+controller by default, or a cluster of 3 (3 controllers, replication
factor 3, ``min.insync.replicas=2``). The jars come from Maven Central, resolved by Maven from
this package's ``pom.xml`` into a cache directory on first use; Java 17+ runs them.

    python -m goka.localkafka [--brokers 1|3] [--dir DIR]   # prints the bootstrap servers

    with LocalKafka(brokers=3) as kafka:                    # in code
        Emitter(kafka.bootstrap, ...)
        kafka.kill(2)        # SIGKILL node 2
        kafka.restart(2)     # same ports, same data

Not for production: the settings favour fast tests (no initial rebalance delay, low minimum
session timeout, a cleaner that looks for work often).
"""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka.admin import AdminClient

from goka._localproc import die_with_parent, free_loopback_port, terminate
from goka.errors import LocalKafkaError
from goka.localkafka._java import KAFKA_VERSION, java_command, kafka_classpath

__all__ = ["KAFKA_VERSION", "LocalKafka", "LocalKafkaError"]

_PACKAGE = Path(__file__).resolve().parent

# Broker settings that make tests fast without changing what they observe.
_TEST_SETTINGS: dict[str, str] = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "500",
    "group.consumer.min.session.timeout.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "100",
    "group.consumer.heartbeat.interval.ms": "500",
    # KIP-848 groups: the broker's session timeout, as the suite's classic groups set theirs
    "group.consumer.session.timeout.ms": "6000",
    # a SIGKILLed node is fenced (its replicas out of the ISRs, its partitions led by others)
    # in 4 s, within those 6 s sessions, as the default 9 s are within the default 45 s: until
    # then a group's offset commits wait for its replicas, the coordinator reads nothing else
    # from that member's connection, heartbeats included, and the member's session expires
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "500",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    # the cleaner looks for work every 200 ms; topics opt in to aggressive compaction with
    # their own segment.ms, min.cleanable.dirty.ratio and delete.retention.ms
    "log.cleaner.backoff.ms": "200",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": str(16 << 20),
    "log.retention.check.interval.ms": "1000",
    "log.initial.task.delay.ms": "1000",
    "controlled.shutdown.enable": "true",
    "transaction.state.log.num.partitions": "4",
    "offsets.topic.num.partitions": "8",
    "share.coordinator.state.topic.num.partitions": "1",
}

_JVM_OPTIONS = ["-Xms256m", "-Xmx1g", "-Djava.awt.headless=true"]
_QUICK_JVM_OPTIONS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
"""C1 only, one GC thread: on 2 cores a node starts in about two thirds of the time and an
idle 3-node cluster takes about 20% of a core instead of 35% (measured with Kafka 4.1.1 on
Java 17), at a lower peak throughput."""
_SERVER_JVM_OPTIONS = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    sasl_port: int | None
    """The SASL_PLAINTEXT (PLAIN) listener's port, when ``sasl_users`` were given."""
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None


class LocalKafka:
    """Apache Kafka in KRaft mode on 127.0.0.1, as child processes that die with this one.

    ``start()`` returns once every node is registered and answers metadata requests;
    ``stop_all()`` shuts every node down cleanly (SIGTERM), ``kill(node)`` SIGKILLs one,
    ``stop(node)`` stops one cleanly, ``restart(node)``/``start_all()`` start stopped nodes
    again on the same ports and data. Usable as a context manager; leaving it removes the
    data directory if this object created it. On Linux each node gets SIGKILL when the thread
    that started it ends, so even a SIGKILLed parent leaves no Kafka behind: start and restart
    nodes from a thread that lives as long as you need them.

    Args:
        brokers: 1 (a combined broker+controller) or 3 (three of them, each a voter).
        directory: where each node keeps ``node-<id>/data`` and ``node-<id>/kafka.log``
            (default: a new temp directory, removed on exit).
        cache_dir: where the jars are resolved to (default ``$GOKA_KAFKA_CACHE`` or
            ``~/.cache/goka/kafka``).
        broker_config: settings on top of the defaults, e.g. ``{"log.cleaner.backoff.ms":
            "50"}``.
        sasl_users: user name -> password: each node also listens with SASL_PLAINTEXT
            (mechanism PLAIN) for these users, at ``sasl_bootstrap`` (no authorizer: a user
            that logs in may do anything). For tests of credentials, right and wrong.
        start_timeout: seconds a node may take to start and register.
        stop_timeout: seconds a clean stop may take before the node is SIGKILLed.
        server_jvm: the JVM's server setup (the C2 compiler, G1) instead of the quick one
            (C1 only, the serial collector), which starts nodes faster and uses less CPU on
            a small machine but peaks lower: for benchmarks.
    """

    def __init__(
        self,
        *,
        brokers: int = 1,
        directory: str | Path | None = None,
        cache_dir: str | Path | None = None,
        broker_config: Mapping[str, Any] | None = None,
        sasl_users: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
        server_jvm: bool = False,
    ) -> None:
        if brokers not in (1, 3):
            raise LocalKafkaError(f"brokers must be 1 or 3, got {brokers!r}")
        if start_timeout <= 0 or stop_timeout <= 0:
            raise LocalKafkaError("start_timeout and stop_timeout must be positive seconds")
        self._count = brokers
        self._own_dir = directory is None
        self._directory = Path(directory) if directory is not None else None
        self._cache_dir = cache_dir
        self._overrides = {str(k): str(v) for k, v in (broker_config or {}).items()}
        self._sasl_users = dict(sasl_users or {})
        for user, password in self._sasl_users.items():
            if not _JAAS_SAFE.fullmatch(user) or not _JAAS_SAFE.fullmatch(password):
                raise LocalKafkaError(
                    f"sasl_users: user {user!r} and its password may only have letters, digits "
                    "and -_.@ (they go into a JAAS configuration)"
                )
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._jvm_options = [
            *_JVM_OPTIONS,
            *(_SERVER_JVM_OPTIONS if server_jvm else _QUICK_JVM_OPTIONS),
        ]
        self._nodes: dict[int, _Node] = {}
        self._classpath: str | None = None
        self._java: list[str] = []

    # ---- what clients need -------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value: every node, e.g. ``127.0.0.1:40123,...``."""
        if not self._nodes:
            raise LocalKafkaError("the local Kafka is not started: call start() first")
        return ",".join(f"127.0.0.1:{n.port}" for n in self._nodes.values())

    @property
    def sasl_bootstrap(self) -> str:
        """The ``bootstrap.servers`` of the SASL_PLAINTEXT listeners (with ``sasl_users``)."""
        if not self._sasl_users:
            raise LocalKafkaError("no SASL listener: pass sasl_users= to LocalKafka")
        if not self._nodes:
            raise LocalKafkaError("the local Kafka is not started: call start() first")
        return ",".join(f"127.0.0.1:{n.sasl_port}" for n in self._nodes.values())

    @property
    def node_ids(self) -> list[int]:
        return sorted(self._nodes)

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise LocalKafkaError("the local Kafka is not started: call start() first")
        return self._directory

    def address(self, node_id: int) -> str:
        """The ``host:port`` of one node's client listener."""
        return f"127.0.0.1:{self._node(node_id).port}"

    def pid(self, node_id: int) -> int | None:
        proc = self._node(node_id).proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def log_path(self, node_id: int) -> Path:
        return self._node(node_id).log_path

    def running(self, node_id: int) -> bool:
        return self.pid(node_id) is not None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalKafka:
        if self._nodes:
            raise LocalKafkaError("the local Kafka is already started")
        self._java = java_command()
        self._classpath = kafka_classpath(self._cache_dir)
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="goka-localkafka-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        try:
            self._nodes = self._plan_nodes()
            self._format()
            for node in self._nodes.values():
                self._spawn(node)
            self._wait_ready(list(self._nodes))
        except BaseException:
            self._shutdown(kill=True)
            raise
        return self

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (no controlled shutdown, nothing flushed)."""
        node = self._node(node_id)
        if node.proc is None or node.proc.poll() is not None:
            raise LocalKafkaError(f"node {node_id} is not running")
        node.proc.kill()
        node.proc.wait()
        node.proc = None

    def stop(self, node_id: int) -> None:
        """Stop one node cleanly (SIGTERM: controlled shutdown), SIGKILL after stop_timeout."""
        node = self._node(node_id)
        if node.proc is None or node.proc.poll() is not None:
            raise LocalKafkaError(f"node {node_id} is not running")
        self._terminate(node)

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node again on the same ports and data; stops it first if
        it still runs. Returns once it is registered with the cluster again."""
        node = self._node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            self._terminate(node)
        self._spawn(node)
        self._wait_ready([node_id])

    def stop_all(self) -> None:
        """A whole-cluster outage: every running node stops cleanly (data kept)."""
        self._shutdown(kill=False)

    def start_all(self) -> None:
        """Start every node that is not running; returns once all are registered."""
        stopped = [n for n in self._nodes.values() if n.proc is None or n.proc.poll() is not None]
        for node in stopped:
            self._spawn(node)
        self._wait_ready([n.node_id for n in stopped])

    def close(self) -> None:
        """Stop every node and remove the data directory if this object created it. Nodes
        whose data is removed are SIGKILLed: a clean stop of a whole cluster can wait for its
        stop timeout (each node's controlled shutdown waits for controllers stopping too)."""
        self._shutdown(kill=self._own_dir)
        self._nodes = {}
        if self._own_dir and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- internals -----------------------------------------------------------------------

    def _node(self, node_id: int) -> _Node:
        node = self._nodes.get(node_id)
        if node is None:
            known = self.node_ids or "none (not started)"
            raise LocalKafkaError(f"no node {node_id!r}: this cluster has nodes {known}")
        return node

    def _plan_nodes(self) -> dict[int, _Node]:
        assert self._directory is not None
        per_node = 3 if self._sasl_users else 2
        ports = _distinct_free_ports(per_node * self._count)
        nodes = {}
        for index in range(self._count):
            node_id = index + 1
            home = self._directory / f"node-{node_id}"
            home.mkdir(exist_ok=True)
            mine = ports[per_node * index : per_node * (index + 1)]
            nodes[node_id] = _Node(
                node_id=node_id,
                port=mine[0],
                controller_port=mine[1],
                sasl_port=mine[2] if self._sasl_users else None,
                data_dir=home / "data",
                log_path=home / "kafka.log",
            )
        return nodes

    def _properties(self, node: _Node) -> dict[str, str]:
        voters = ",".join(
            f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self._nodes.values()
        )
        replicas = str(self._count)
        min_isr = "2" if self._count == 3 else "1"
        listeners = {"PLAINTEXT": node.port, "CONTROLLER": node.controller_port}
        if node.sasl_port is not None:
            listeners["SASL_PLAINTEXT"] = node.sasl_port
        advertised = {name: port for name, port in listeners.items() if name != "CONTROLLER"}
        return {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": ",".join(f"{name}://127.0.0.1:{p}" for name, p in listeners.items()),
            "advertised.listeners": ",".join(
                f"{name}://127.0.0.1:{p}" for name, p in advertised.items()
            ),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                f"{name}:{'PLAINTEXT' if name == 'CONTROLLER' else name}" for name in listeners
            ),
            **self._sasl_properties(),
            "log.dirs": str(node.data_dir),
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            **_TEST_SETTINGS,
            **self._overrides,
        }

    def _sasl_properties(self) -> dict[str, str]:
        if not self._sasl_users:
            return {}
        users = " ".join(f'user_{user}="{password}"' for user, password in self._sasl_users.items())
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            ),
        }

    def _config_path(self, node: _Node) -> Path:
        path = node.data_dir.parent / "server.properties"
        lines = [f"{key}={value}" for key, value in self._properties(node).items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _format(self) -> None:
        cluster_id = _cluster_id()
        for node in self._nodes.values():
            command = [
                *self._jvm(),
                "kafka.tools.StorageTool",
                "format",
                # one argument: an id may start with "-", which the tool would take for an
                # option (URL-safe base64 has "-" among its 64 letters)
                f"--cluster-id={cluster_id}",
                "--config",
                str(self._config_path(node)),
                "--ignore-formatted",
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise LocalKafkaError(
                    f"formatting the storage of node {node.node_id} failed "
                    f"(exit {done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}"
                )

    def _jvm(self) -> list[str]:
        assert self._classpath is not None
        return [
            *self._java,
            *self._jvm_options,
            f"-Dlog4j2.configurationFile={_PACKAGE / 'log4j2.yaml'}",
            "-cp",
            self._classpath,
        ]

    def _spawn(self, node: _Node) -> None:
        config = self._config_path(node)
        with open(node.log_path, "ab") as log:
            node.proc = subprocess.Popen(
                die_with_parent(
                    [
                        *self._jvm(),
                        f"-Dkafka.logs.dir={node.data_dir.parent}",
                        "kafka.Kafka",
                        str(config),
                    ]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, node_ids: list[int]) -> None:
        """Until the cluster's metadata lists every node in ``node_ids`` (and so they serve
        clients); each node is asked directly."""
        deadline = time.monotonic() + self._start_timeout
        pending = set(node_ids)
        admins = {
            node_id: AdminClient(
                {"bootstrap.servers": f"127.0.0.1:{self._nodes[node_id].port}", "log_level": 0}
            )
            for node_id in node_ids
        }
        while pending:
            for node_id in sorted(pending):
                node = self._nodes[node_id]
                if node.proc is None or node.proc.poll() is not None:
                    raise LocalKafkaError(
                        f"Kafka node {node_id} exited while starting; its log "
                        f"({node.log_path}) ends with:\n{_tail(node.log_path)}"
                    )
                if _registered(admins[node_id], node_id):
                    pending.discard(node_id)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"Kafka nodes {sorted(pending)} were not ready within {self._start_timeout}s; "
                    f"the log of node {min(pending)} ends with:\n"
                    f"{_tail(self._nodes[min(pending)].log_path)}"
                )
            time.sleep(0.2)

    def _terminate(self, node: _Node) -> None:
        proc, node.proc = node.proc, None
        if proc is not None:
            terminate(proc, signal.SIGTERM, self._stop_timeout)  # a controlled shutdown

    def _shutdown(self, *, kill: bool) -> None:
        running = [n for n in self._nodes.values() if n.proc is not None and n.proc.poll() is None]
        if kill:
            for node in running:
                assert node.proc is not None
                node.proc.kill()
        else:
            # all at once: a node shutting down alone waits for the others to take its leaders
            for node in running:
                assert node.proc is not None
                node.proc.send_signal(signal.SIGTERM)
        for node in running:
            self._terminate(node)
        for node in self._nodes.values():
            node.proc = None


def _registered(admin: AdminClient, node_id: int) -> bool:
    """Whether the node that ``admin`` asks answers metadata requests and lists itself."""
    try:
        metadata = admin.list_topics(timeout=1.0)
    except Exception:  # noqa: BLE001 - not up yet; retried until the deadline
        return False
    return node_id in metadata.brokers


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


_JAAS_SAFE = re.compile(r"[A-Za-z0-9_.@-]+")


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_loopback_port()
        if port not in ports:
            ports.append(port)
    return ports


def _tail(path: Path, limit: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-limit:]
    return "(no log)"
