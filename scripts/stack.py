"""Run provtrace's local evidence stack: Jaeger v2, then the OpenTelemetry Collector, no Docker.

    python scripts/stack.py up|down|status [--dir DIR]

The process control lives in src/provtrace/testing/stack.py (also behind the test fixtures); this
file is its command line, bound to this checkout, with ``var/stack`` as the default directory. It
loads that module by path, so that it runs with the standard library alone, before any virtualenv
exists; ``Stack``, ``Ports`` and ``StackError`` are importable from here too (demo, bench).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO / "var" / "stack"


def _control() -> Any:
    """provtrace.testing.stack, without importing provtrace (which needs its dependencies)."""
    name = "provtrace_stack_control"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO / "src" / "provtrace" / "testing" / "stack.py"
        )
        if spec is None or spec.loader is None:
            raise SystemExit(f"stack: cannot load the stack control module from {REPO / 'src'}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


_stack = _control()
CHECKOUT = _stack.Checkout(REPO)
JAEGER, COLLECTOR = _stack.JAEGER, _stack.COLLECTOR
Ports = _stack.Ports
StackError = _stack.StackError


class Stack(_stack.Stack):
    """A stack of this checkout, in var/stack unless told otherwise."""

    def __init__(self, directory: Path | str = DEFAULT_DIR, ports: Any = None, **options: Any) -> None:
        super().__init__(directory, ports, checkout=CHECKOUT, **options)


def resolve_binaries(*, build: bool = True) -> tuple[Path, Path]:
    """The collector and Jaeger binaries of this checkout (see build-stack.sh)."""
    return _stack.resolve_binaries(CHECKOUT, build=build)


# --- CLI ------------------------------------------------------------------------------------


def _describe(stack: Stack) -> Iterator[str]:
    """Human-readable status lines."""
    for item in stack.status():
        state = f"running pid {item.pid}" if item.running else "stopped"
        health = "healthy" if item.healthy else "not healthy"
        if item.name == JAEGER:
            where = f"query {stack.jaeger_url}"
        else:
            where = f"otlp {stack.otlp_http_endpoint} (http) {stack.otlp_grpc_endpoint} (grpc)"
        yield f"{item.name:<10} {state:<18} {health:<12} {where}  log {item.log}"
    files = stack.archive_files()
    size = sum(path.stat().st_size for path in files)
    yield f"{'archive':<10} {stack.archive_dir} ({len(files)} file(s), {size} bytes)"


def main(argv: list[str] | None = None) -> int:
    """`up`, `down`, `status`; exit 0 = ok, 1 = failure or not healthy, 2 = usage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="stack directory")
    parser.add_argument(
        "--jaeger-storage",
        choices=sorted(CHECKOUT.jaeger_configs),
        default=None,
        help="Jaeger store for `up`: memory (jaeger.yaml, default) or badger (jaeger-badger.yaml)",
    )
    parser.add_argument(
        "--free-ports", action="store_true", help="`up` on free ports instead of the defaults"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health")
    parser.add_argument("--no-build", action="store_true", help="fail instead of building")
    args = parser.parse_args(argv)

    try:
        ports = Ports.free() if args.command == "up" and args.free_ports else None
        stack = Stack(args.dir, ports, jaeger_storage=args.jaeger_storage, build=not args.no_build)
        if args.command == "up":
            stack.start(timeout=args.timeout)
        elif args.command == "down":
            stack.stop(timeout=args.timeout)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    for line in _describe(stack):
        print(line)
    if args.command == "down":
        return 0 if not any(item.running for item in stack.status()) else 1
    return 0 if all(item.healthy for item in stack.status()) else 1


if __name__ == "__main__":
    sys.exit(main())
