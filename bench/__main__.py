"""``python -m bench [NAME ...]``: run benchmarks. Without a name, the ones of the performance
table (docs/performance.md) and then ``report``, which prints the table and draws its chart;
``all`` runs every module of this package with a ``main()`` (each is named after its module)."""

import importlib
import pkgutil
import sys
from pathlib import Path

HELPERS = {"common"}
BENCHMARKS = sorted(
    info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]) if info.name not in HELPERS
)
TABLE = ["overhead", "burst", "verify", "imports", "memory", "load", "report"]

names = sys.argv[1:] or TABLE
if names == ["all"]:
    names = [name for name in BENCHMARKS if name != "report"] + ["report"]
for name in names:
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose from all, {', '.join(BENCHMARKS)}")
    print(f"== {name}", flush=True)
    importlib.import_module(f"bench.{name}").main()
