# The two set-up commands (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.vsbench-installed

.PHONY: install engine postgres browser demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the pinned wheel (CPU here, CUDA elsewhere); a loose 'torch' would pull the newest CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/vsbench demo --out demo-output

lint: install
	$(BIN)/ruff check .

# a Docker engine for the container tests: installed from Debian and started when none answers
engine:
	containers/engine.sh

# a PostgreSQL server for the results-store tests: installed from Debian and started when none answers
postgres:
	containers/postgres.sh >/dev/null

# a headless Chromium for the published-site test: installed from Debian when missing
browser:
	containers/chromium.sh >/dev/null

# VSBENCH_REQUIRE_*=1: a container, PostgreSQL or browser test fails (never skips) when its server is missing
test: install lint engine postgres browser
	VSBENCH_REQUIRE_DOCKER=1 VSBENCH_REQUIRE_POSTGRES=1 VSBENCH_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q

# the benchmarks at their full sizes (make test runs the same checks at smoke sizes: tests/benchmarks/sizes.py)
bench: install
	VSBENCH_BENCH=full $(BIN)/python -m pytest -q tests/benchmarks --benchmark-columns=mean,stddev,rounds

clean:
	rm -rf demo-output .pytest_cache .ruff_cache .hypothesis .benchmarks
