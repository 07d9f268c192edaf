"""``python -m bench [overhead|throughput|integrity|imports|verify]``: run benchmarks (all by default)."""

import sys

from bench import imports, integrity, overhead, throughput, verify

BENCHMARKS = {
    "overhead": overhead.main,
    "throughput": throughput.main,
    "integrity": integrity.main,
    "imports": imports.main,
    "verify": verify.main,
}

for name in sys.argv[1:] or list(BENCHMARKS):
    BENCHMARKS[name]()
