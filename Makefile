# Forest: `make run` and `make test` need only Python 3.11+, make and (as root) apt-get.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat requirements.txt requirements-dev.txt requirements-bench.txt | cksum | cut -d' ' -f1)

.PHONY: help install run test lint format compose-config services stop clean chromium

help:
	@echo "make run     set up and run Forest on http://127.0.0.1:8000 (embedded PostgreSQL + Redis)"
	@echo "make test    set up and run the whole suite and the linters"
	@echo "make lint    ruff check, ruff format --check, mypy (scripts/mypy), docker compose config"
	@echo "make format  ruff format and autofix"
	@echo "make services / make stop   keep the embedded servers up between commands / stop them"
	@echo "make bench-NAME  run bench/NAME.py (prints one JSON line of figures; BENCH_ARGS=...)"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py run

test: lint chromium
	$(PY) -m pytest

# The browser tests drive Debian's chromium (Playwright's own browser downloads are not used),
# with a CJK font (fonts-noto-cjk) so that the demo board's Korean shows in screenshots instead
# of empty boxes: each installed with apt-get when missing and we are root with apt-get;
# otherwise left alone (without chromium the browser tests fail, saying how to install it).
chromium:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="chromium"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP) compose-config
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHON=$(PY) scripts/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# docker-compose.yml must stay valid; no Docker engine is needed to check it.
compose-config:
	@scripts/compose-config

services: $(STAMP)
	$(PY) -m project.runtime start

stop: $(STAMP)
	$(PY) -m project.runtime stop

# Benchmarks also need their peers (requirements-bench.txt), installed once per change.
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	@rm -f $(VENV)/.bench-*
	@touch $@

bench-%: $(BENCH_STAMP)
	$(PY) -m bench.$* $(BENCH_ARGS)

clean: stop
	rm -rf var/static
