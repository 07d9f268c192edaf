"""``python -m bench [overhead|throughput|integrity|credentials]``: run benchmarks (all by default)."""

import sys

from bench import credentials, integrity, overhead, throughput

BENCHMARKS = {
    "overhead": overhead.main,
    "throughput": throughput.main,
    "integrity": integrity.main,
    "credentials": credentials.main,
}

for name in sys.argv[1:] or list(BENCHMARKS):
    BENCHMARKS[name]()
