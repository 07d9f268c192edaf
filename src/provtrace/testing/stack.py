"""Process control of provtrace's evidence stack: Jaeger v2, then the OpenTelemetry Collector, no
Docker, each stack's state in one directory. ``scripts/stack.py up|down|status`` is its command
line; the ``evidence_stack`` fixture of :mod:`provtrace.testing` runs a private stack on free
loopback ports with it, and tests stop and restart one component (persistent-queue tests).

Standard library only, and importable without the rest of provtrace (``scripts/stack.py`` loads
this file by path), so that the command line runs before any virtualenv exists.

Layout of a stack directory::

    logs/collector.log, logs/jaeger.log   process output (appended across restarts)
    collector.pid, jaeger.pid             pids of the running processes
    stack.json                            ports and configs of the running stack
    archive/spans.jsonl (+ rotated)       the collector's append-only archive
    queue/                                the persistent sending queue towards Jaeger
    jaeger/badger/                        Jaeger's store with --jaeger-storage badger
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# A source checkout of provtrace holds the stack's configs and the script that builds (and caches)
# its binaries; PROVTRACE_CHECKOUT names one explicitly.
CHECKOUT_ENV = "PROVTRACE_CHECKOUT"
HOST = "127.0.0.1"

# Components of a stack, in start order (Jaeger first: the collector exports to it).
JAEGER = "jaeger"
COLLECTOR = "collector"
COMPONENTS = (JAEGER, COLLECTOR)

# The collector's file exporter writes here (relative to the stack dir); rotated files sit next to
# it as spans-<UTC yyyy-mm-ddThh-mm-ss.mmm>-size.jsonl (see collector-config/otelcol.yaml).
ARCHIVE_NAME = "spans.jsonl"


class StackError(RuntimeError):
    """A stack operation failed; the message names the log file to read."""


@dataclasses.dataclass(frozen=True)
class Ports:
    """Every TCP port a stack listens on (all bound to 127.0.0.1)."""

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    collector_health: int = 13133
    jaeger_otlp_grpc: int = 14317
    jaeger_otlp_http: int = 14318
    jaeger_query_http: int = 16686
    jaeger_query_grpc: int = 16685
    jaeger_health: int = 14133

    @classmethod
    def free(cls) -> Ports:
        """Pick distinct free ports, so a test stack never collides with a developer's stack."""
        with contextlib.ExitStack() as stack:
            ports: list[int] = []
            for _ in dataclasses.fields(cls):
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind((HOST, 0))
                ports.append(int(sock.getsockname()[1]))
        return cls(*ports)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ports:
        """Read ports back from stack.json, ignoring unknown keys."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: int(value) for key, value in data.items() if key in names})

    def for_component(self, name: str) -> list[int]:
        """The ports one component binds, checked before it starts."""
        if name == COLLECTOR:
            return [self.otlp_grpc, self.otlp_http, self.collector_health]
        return [
            self.jaeger_otlp_grpc,
            self.jaeger_otlp_http,
            self.jaeger_query_http,
            self.jaeger_query_grpc,
            self.jaeger_health,
        ]


@dataclasses.dataclass(frozen=True)
class ComponentStatus:
    """What `status` reports for one process."""

    name: str
    pid: int | None
    running: bool
    healthy: bool
    log: Path


# Popen objects of the processes this interpreter started, by pid: lets any Stack instance reap
# its children (a dead, unreaped child would otherwise look alive to kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclasses.dataclass(frozen=True)
class Checkout:
    """A source checkout of provtrace: the stack's configs and the script that builds its binaries."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "collector-config"

    @property
    def collector_config(self) -> Path:
        return self.config_dir / "otelcol.yaml"

    @property
    def jaeger_configs(self) -> Mapping[str, Path]:
        """Jaeger's config by store: ``memory`` (the default) or ``badger``."""
        return {"memory": self.config_dir / "jaeger.yaml", "badger": self.config_dir / "jaeger-badger.yaml"}

    @property
    def build_script(self) -> Path:
        return self.root / "scripts" / "build-stack.sh"

    def complete(self) -> bool:
        return self.collector_config.is_file() and self.build_script.is_file()

    @classmethod
    def locate(cls, *starts: Path) -> Checkout | None:
        """PROVTRACE_CHECKOUT, else the nearest directory holding a checkout's stack files at or
        above one of ``starts`` (the test run's root, the working directory) or this file (an
        editable install); None when there is none (provtrace installed from a wheel, elsewhere)."""
        explicit = os.environ.get(CHECKOUT_ENV)
        if explicit:
            return cls(Path(explicit).resolve())
        for start in (*starts, Path.cwd(), Path(__file__)):
            for directory in (start.resolve(), *start.resolve().parents):
                if cls(directory).complete():
                    return cls(directory)
        return None


def resolve_binaries(checkout: Checkout | None = None, *, build: bool = True) -> tuple[Path, Path]:
    """Return (collector, jaeger) binaries: env overrides, else build-stack.sh's cache paths (of
    ``checkout``, by default the one :meth:`Checkout.locate` finds).

    PROVTRACE_COLLECTOR_BIN / PROVTRACE_JAEGER_BIN let users point at binaries built elsewhere.
    With build=True a missing binary is built by build-stack.sh (minutes, the first time only).
    """
    env_collector = os.environ.get("PROVTRACE_COLLECTOR_BIN")
    env_jaeger = os.environ.get("PROVTRACE_JAEGER_BIN")
    if env_collector and env_jaeger:
        return Path(env_collector), Path(env_jaeger)
    checkout = checkout or _located()
    collector, jaeger = _build_stack_paths(checkout)
    missing = [path for path in (collector, jaeger) if not os.access(path, os.X_OK)]
    if missing and build:
        _run_build_stack(checkout, "all", timeout=3600)
        missing = [path for path in (collector, jaeger) if not os.access(path, os.X_OK)]
    if missing:
        raise StackError(
            f"binaries not built: {', '.join(map(str, missing))}; run: bash {checkout.build_script}"
        )
    return Path(env_collector or collector), Path(env_jaeger or jaeger)


def _located() -> Checkout:
    checkout = Checkout.locate()
    if checkout is None:
        raise StackError(
            f"no provtrace checkout found (collector-config/ and scripts/build-stack.sh) here or "
            f"above; set {CHECKOUT_ENV} to one"
        )
    return checkout


def _bash() -> str:
    """Absolute path of bash (build-stack.sh is a bash script)."""
    bash = shutil.which("bash")
    if bash is None:
        raise StackError("bash not found on PATH; it is needed to run scripts/build-stack.sh")
    return bash


def _run_build_stack(checkout: Checkout, action: str, *, timeout: float) -> str:
    """Run build-stack.sh ACTION; its progress goes to our stderr."""
    script = checkout.build_script
    try:
        result = subprocess.run(  # noqa: S603 - the checkout's own build script
            [_bash(), str(script), action],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except subprocess.CalledProcessError as exc:
        raise StackError(f"{script} {action} failed with exit code {exc.returncode}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{script} {action} did not finish in {timeout:.0f}s") from exc
    return result.stdout


def _build_stack_paths(checkout: Checkout) -> tuple[Path, Path]:
    """Ask build-stack.sh where the cached binaries live (never hard-coded here)."""
    lines = _run_build_stack(checkout, "paths", timeout=60).split()
    if len(lines) != 2:
        raise StackError(f"unexpected output from {checkout.build_script} paths: {lines!r}")
    return Path(lines[0]), Path(lines[1])


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET url answers 200: the health endpoints' way of saying ready."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a loopback URL
            return int(response.status) == 200
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


def _port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:port.

    Checked before starting a process: otherwise another stack's health endpoint on the same port
    would answer our readiness probe while our process failed to bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Go listeners set SO_REUSEADDR too, so a port in TIME_WAIT does not count as in use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _pid_alive(pid: int) -> bool:
    """True when pid is a live (not zombie) process."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # Field 3, after the parenthesised command name, is the state; Z = zombie.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _tail(path: Path, lines: int = 15) -> str:
    """Last lines of a log, quoted into error messages so failures explain themselves."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


class Stack:
    """One Jaeger + collector pair whose state lives in one directory.

    Ports default to the well-known ones (4317/4318, 16686, ...), or to those recorded in
    DIR/stack.json by a running stack, so `status` and `down` find what `up` started.
    """

    def __init__(
        self,
        directory: Path | str,
        ports: Ports | None = None,
        *,
        checkout: Checkout | None = None,
        jaeger_storage: str | None = None,
        collector_config: Path | None = None,
        collector_overlays: Sequence[Path] = (),
        environment: Mapping[str, str] | None = None,
        binaries: tuple[Path, Path] | None = None,
        build: bool = True,
    ) -> None:
        """``collector_overlays`` are further configs the collector merges over
        ``collector_config`` (collector-config/otelcol-secure.yaml); ``environment`` adds
        variables those configs read (certificate paths, gateway addresses)."""
        located = checkout or _located()
        self.checkout = located
        self.dir = Path(directory).resolve()
        state = self._read_state()
        if ports is None:
            ports = Ports.from_dict(state.get("ports", {})) if state else Ports()
        if jaeger_storage is None:
            jaeger_storage = str(state.get("jaeger_storage", "memory"))
        jaeger_configs = located.jaeger_configs
        if jaeger_storage not in jaeger_configs:
            raise StackError(f"jaeger_storage must be one of {sorted(jaeger_configs)}")
        self.ports = ports
        self.jaeger_storage = jaeger_storage
        self.collector_config = Path(collector_config or located.collector_config).resolve()
        self.collector_overlays = tuple(Path(path).resolve() for path in collector_overlays)
        self._extra_environment = dict(environment or {})
        self.jaeger_config = jaeger_configs[jaeger_storage]
        self._binaries = binaries
        self._build = build

    # --- where things are -------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        """Directory of the process logs."""
        return self.dir / "logs"

    @property
    def archive_dir(self) -> Path:
        """Directory of the collector's file-exporter archive."""
        return self.dir / "archive"

    @property
    def archive_path(self) -> Path:
        """The archive file currently written (rotated files sit next to it)."""
        return self.archive_dir / ARCHIVE_NAME

    @property
    def jaeger_url(self) -> str:
        """Base URL of Jaeger's query service (/api/..., /api/v3/..., UI)."""
        return f"http://{HOST}:{self.ports.jaeger_query_http}"

    @property
    def jaeger_query_grpc_endpoint(self) -> str:
        """host:port of Jaeger's query gRPC API."""
        return f"{HOST}:{self.ports.jaeger_query_grpc}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP exporters (the SDK appends /v1/traces)."""
        return f"http://{HOST}:{self.ports.otlp_http}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        """host:port of the collector's OTLP/gRPC receiver (plaintext)."""
        return f"{HOST}:{self.ports.otlp_grpc}"

    def log_path(self, name: str) -> Path:
        """Log file of a component (appended across restarts)."""
        return self.logs_dir / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        """Pid file of a component."""
        return self.dir / f"{name}.pid"

    def health_url(self, name: str) -> str:
        """Readiness URL: health_check answers on /, Jaeger's healthcheckv2 on /status."""
        if name == COLLECTOR:
            return f"http://{HOST}:{self.ports.collector_health}/"
        return f"http://{HOST}:{self.ports.jaeger_health}/status"

    def archive_files(self) -> list[Path]:
        """Archive files oldest first: rotated files (their UTC timestamps sort), then the live one.

        Readers must accept a last line without newline and empty lines: the exporter writes a
        record and its newline as two writes, so a size rotation can fall between them.
        """
        if not self.archive_dir.is_dir():
            return []
        stem, suffix = Path(ARCHIVE_NAME).stem, Path(ARCHIVE_NAME).suffix
        rotated = sorted(
            path
            for path in self.archive_dir.glob(f"{stem}-*{suffix}")
            if path.is_file() and path.name != ARCHIVE_NAME
        )
        current = [self.archive_path] if self.archive_path.is_file() else []
        return rotated + current

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start Jaeger then the collector and wait until both are healthy (idempotent).

        A component that is already running and healthy is left alone. If the collector fails,
        a Jaeger started by this call is stopped again, so a failed `up` leaves nothing behind.
        """
        jaeger_was_running = self.running(JAEGER)
        self.start_jaeger(timeout=timeout)
        try:
            self.start_collector(timeout=timeout)
        except StackError:
            if not jaeger_was_running:
                self.stop_jaeger()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the collector first (it stops accepting and flushes), then Jaeger."""
        self.stop_collector(timeout=timeout)
        self.stop_jaeger(timeout=timeout)
        self.state_path.unlink(missing_ok=True)

    def start_collector(self, timeout: float = 60.0) -> None:
        """Start (or confirm) the collector; used alone by the persistent-queue test."""
        self._start(COLLECTOR, timeout)

    def stop_collector(self, timeout: float = 15.0) -> None:
        """SIGTERM the collector, SIGKILL it after timeout seconds."""
        self._stop(COLLECTOR, timeout)

    def kill_collector(self, timeout: float = 15.0) -> None:
        """SIGKILL the collector (a crash: no flush, no clean shutdown) and wait until it is gone."""
        pid = self.pid(COLLECTOR)
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            if not self._wait_exit(pid, timeout):
                raise StackError(f"collector (pid {pid}) survived SIGKILL")
        self.pid_path(COLLECTOR).unlink(missing_ok=True)

    def start_jaeger(self, timeout: float = 60.0) -> None:
        """Start (or confirm) Jaeger."""
        self._start(JAEGER, timeout)

    def stop_jaeger(self, timeout: float = 15.0) -> None:
        """SIGTERM Jaeger, SIGKILL it after timeout seconds (simulates a backend outage)."""
        self._stop(JAEGER, timeout)

    def pid(self, name: str) -> int | None:
        """Pid of a running component of THIS stack, else None (stale pid files are ignored)."""
        try:
            pid = int(self.pid_path(name).read_text().strip())
        except (OSError, ValueError):
            return None
        if not _pid_alive(pid) or not self._belongs_to_stack(pid):
            return None
        return pid

    def running(self, name: str) -> bool:
        """True when the component's process is alive."""
        return self.pid(name) is not None

    def healthy(self, name: str) -> bool:
        """True when the component runs and its health endpoint answers 200."""
        return self.running(name) and _http_ok(self.health_url(name))

    def status(self) -> list[ComponentStatus]:
        """State of both components, in start order."""
        result = []
        for name in COMPONENTS:
            pid = self.pid(name)
            healthy = pid is not None and _http_ok(self.health_url(name))
            result.append(ComponentStatus(name, pid, pid is not None, healthy, self.log_path(name)))
        return result

    # --- internals ----------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """stack.json: ports and configs of the running stack, read by later `status`/`down`."""
        return self.dir / "stack.json"

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self) -> None:
        state = {
            "ports": dataclasses.asdict(self.ports),
            "jaeger_storage": self.jaeger_storage,
            "collector_config": str(self.collector_config),
            "collector_overlays": [str(path) for path in self.collector_overlays],
            "jaeger_config": str(self.jaeger_config),
            "jaeger_url": self.jaeger_url,
            "otlp_http_endpoint": self.otlp_http_endpoint,
            "otlp_grpc_endpoint": self.otlp_grpc_endpoint,
        }
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_path)

    def _belongs_to_stack(self, pid: int) -> bool:
        """Guard against pid reuse: the process must carry this stack's PROVTRACE_STACK_DIR.

        Where /proc is unavailable (macOS) the pid file is trusted.
        """
        if pid in _CHILDREN:
            return True
        environ = Path(f"/proc/{pid}/environ")
        if not Path("/proc/self/environ").exists():
            return True
        try:
            entries = environ.read_bytes().split(b"\0")
        except OSError:
            return False
        return f"PROVTRACE_STACK_DIR={self.dir}".encode() in entries

    def _environment(self) -> dict[str, str]:
        """Variables read by collector-config/*.yaml, so each stack gets its own ports and dirs."""
        ports = self.ports
        env = dict(os.environ)
        env.update(
            {
                "PROVTRACE_STACK_DIR": str(self.dir),
                "PROVTRACE_LISTEN_HOST": HOST,
                "PROVTRACE_OTLP_GRPC_PORT": str(ports.otlp_grpc),
                "PROVTRACE_OTLP_HTTP_PORT": str(ports.otlp_http),
                "PROVTRACE_COLLECTOR_HEALTH_PORT": str(ports.collector_health),
                "PROVTRACE_JAEGER_OTLP_HOST": HOST,
                "PROVTRACE_JAEGER_LISTEN_HOST": HOST,
                "PROVTRACE_JAEGER_OTLP_GRPC_PORT": str(ports.jaeger_otlp_grpc),
                "PROVTRACE_JAEGER_OTLP_HTTP_PORT": str(ports.jaeger_otlp_http),
                "PROVTRACE_JAEGER_QUERY_HTTP_PORT": str(ports.jaeger_query_http),
                "PROVTRACE_JAEGER_QUERY_GRPC_PORT": str(ports.jaeger_query_grpc),
                "PROVTRACE_JAEGER_HEALTH_PORT": str(ports.jaeger_health),
            }
        )
        env.update(self._extra_environment)
        return env

    def _argv(self, name: str) -> list[str]:
        if self._binaries is None:
            self._binaries = resolve_binaries(self.checkout, build=self._build)
        collector, jaeger = self._binaries
        if name == COLLECTOR:
            configs = (self.collector_config, *self.collector_overlays)
            return [str(collector), *(f"--config={config}" for config in configs)]
        return [str(jaeger), f"--config={self.jaeger_config}"]

    def _start(self, name: str, timeout: float) -> None:
        if self.running(name):
            self._wait_healthy(name, timeout)
            return
        busy = [port for port in self.ports.for_component(name) if _port_in_use(port)]
        if busy:
            raise StackError(
                f"cannot start {name}: port(s) {busy} on {HOST} already in use "
                f"(another stack? try `status`, or use free ports)"
            )
        argv = self._argv(name)
        for directory in (self.dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_state()
        log_path = self.log_path(name)
        with log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"\n=== stack.py {stamp}: starting {' '.join(argv)}\n".encode())
            log.flush()
            # New session: Ctrl-C in the shell that ran `up` must not reach the daemons.
            process = subprocess.Popen(  # noqa: S603 - the stack's own binaries
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=self._environment(),
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process
        self.pid_path(name).write_text(f"{process.pid}\n")
        self._wait_healthy(name, timeout)

    def _wait_healthy(self, name: str, timeout: float) -> None:
        """Poll the health endpoint until 200, the process dies, or timeout (bounded)."""
        deadline = time.monotonic() + timeout
        url = self.health_url(name)
        log_path = self.log_path(name)
        while True:
            if not self.running(name):
                raise StackError(f"{name} exited during startup; see {log_path}\n{_tail(log_path)}")
            if _http_ok(url):
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{name} not healthy at {url} after {timeout:.0f}s; see {log_path}\n{_tail(log_path)}"
                )
            time.sleep(0.2)

    def _stop(self, name: str, timeout: float) -> None:
        pid = self.pid(name)
        if pid is not None:
            self._signal(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._signal(pid, signal.SIGKILL)
                if not self._wait_exit(pid, 10.0):
                    raise StackError(f"{name} (pid {pid}) survived SIGKILL")
        self.pid_path(name).unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    @staticmethod
    def _wait_exit(pid: int, timeout: float) -> bool:
        """Wait (bounded) for pid to exit, reaping it if it is our child."""
        child = _CHILDREN.get(pid)
        if child is not None:
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            _CHILDREN.pop(pid, None)
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True
