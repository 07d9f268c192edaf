"""``python -m bench [overhead|throughput|integrity|imports]``: run benchmarks (all by default)."""

import sys

from bench import imports, integrity, overhead, throughput

BENCHMARKS = {
    "overhead": overhead.main,
    "throughput": throughput.main,
    "integrity": integrity.main,
    "imports": imports.main,
}

for name in sys.argv[1:] or list(BENCHMARKS):
    BENCHMARKS[name]()
