"""``python -m bench [overhead|throughput|integrity|redaction]``: run benchmarks (all by default)."""

import sys

from bench import integrity, overhead, redaction, throughput

BENCHMARKS = {
    "overhead": overhead.main,
    "throughput": throughput.main,
    "integrity": integrity.main,
    "redaction": redaction.main,
}

for name in sys.argv[1:] or list(BENCHMARKS):
    BENCHMARKS[name]()
