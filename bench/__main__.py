"""``python -m bench [overhead|throughput|integrity]``: run benchmarks (all by default)."""

import sys

from bench import integrity, overhead, throughput

BENCHMARKS = {"overhead": overhead.main, "throughput": throughput.main, "integrity": integrity.main}

for name in sys.argv[1:] or list(BENCHMARKS):
    BENCHMARKS[name]()
