"""``python -m bench [NAME ...]``: run benchmarks (all by default). Every module of this package
with a ``main()`` is a benchmark, named after the module."""

import importlib
import pkgutil
import sys
from pathlib import Path

HELPERS = {"common"}
BENCHMARKS = sorted(
    info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]) if info.name not in HELPERS
)

for name in sys.argv[1:] or BENCHMARKS:
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    importlib.import_module(f"bench.{name}").main()
