"""``python -m bench``: run every benchmark."""

from bench import overhead

overhead.main()
