# provtrace: `make demo` runs the reference agent end to end on the embedded archive (no Go build);
# `make demo-stack` the same against the real collector and Jaeger; `make test` runs every check.
# Everything is installed by these targets; Go builds are cached in ~/.cache/provtrace and the
# Go module/build caches, outside the repository.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PACKAGES := -e ".[dev,docs]"
PYTEST_ARGS ?=
CODE := src tests examples scripts bench conftest.py noxfile.py $(wildcard instrumentation/*/src instrumentation/*/tests)

.PHONY: install lint typecheck docs stack-build system-packages stack-up stack-down stack-status unit instrumentation test demo demo-stack bench clean

$(INSTALLED): pyproject.toml $(wildcard instrumentation/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PACKAGES) $(foreach d,$(wildcard instrumentation/*/pyproject.toml),-e "$(dir $(d))[test]")
	touch $@

install: $(INSTALLED)

lint: install
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

typecheck: install
	$(VENV)/bin/mypy src $(wildcard instrumentation/*/src)

docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir var/site

stack-build:
	bash scripts/build-stack.sh all

# Debian packages the tests drive: headless Chromium (HTML report) and libfaketime (clock jumps).
system-packages:
	bash scripts/install-system-packages.sh

stack-up: install stack-build
	$(PY) scripts/stack.py up

stack-down:
	$(PYTHON) scripts/stack.py down

stack-status:
	$(PYTHON) scripts/stack.py status

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Each instrumentation's tests, in environments of their own (one per version line, see
# noxfile.py), cached outside the repository; NOX_ARGS="-s mcp1" runs one session.
NOX_ARGS ?=
instrumentation: install stack-build
	PROVTRACE_REQUIRE_STACK=1 $(VENV)/bin/nox $(NOX_ARGS)

# The SDK's tests, then each instrumentation's (their own pytest settings, in the nox sessions:
# never in the SDK's run). The integration tests start (and stop) their own collector and Jaeger
# on free loopback ports; here they must run (PROVTRACE_REQUIRE_STACK=1: no binary, no skip but a
# failure). The html report tests need headless Chromium, the clock-jump tests libfaketime
# (make system-packages).
test: lint typecheck docs stack-build system-packages
	PROVTRACE_REQUIRE_STACK=1 $(PY) -m pytest tests $(PYTEST_ARGS)
	PROVTRACE_REQUIRE_STACK=1 $(VENV)/bin/nox $(NOX_ARGS)

# The reference agent's two incidents recorded into the embedded archive, reconstructed and verified.
demo: install
	PROVTRACE_DEMO_MODE=embedded $(PY) scripts/demo.py

# The same through the real collector and Jaeger (built once from the Go module proxy, cached).
demo-stack: install stack-build
	PROVTRACE_DEMO_MODE=stack $(PY) scripts/demo.py

# In the bench environment (scripts/bench-env.sh: the peers Traceloop and Logfire, matplotlib,
# the profilers), cached outside the checkout; provtrace comes from this checkout's src/.
bench: install stack-build
	PYTHONPATH=src "$$(bash scripts/bench-env.sh)" -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis build instrumentation/*/build
