"""``python -m provtrace.cli``."""

from provtrace.cli.main import main

raise SystemExit(main())
