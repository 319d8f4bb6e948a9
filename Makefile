# Two entry points: `make demo` (the service on the embedded defaults, with a replayed PBX)
# and `make test` (installs everything, then lint, types, import rules and the whole test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install browser asterisk demo serve test lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Test tools from npm: Stoplight Prism serves a mock of Twilio's API from tests/fixtures/twilio.
node_modules: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
	else npm install --no-audit --no-fund; fi
	touch $@

# Browser tests drive Debian's chromium through Playwright (Playwright's own download fails here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || sudo sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'; }

# The real Asterisk 22.10.1 the live tests drive (tests/live): built once into the cache
# (~/.cache/asterisk-22.10.1-min, about 2 minutes on 2 cores), then a no-op. asterisk/build.sh
# says which source it used: $$ASTERISK_SOURCE, ../shared/asterisk, or the upstream tarball.
asterisk:
	bash asterisk/build.sh

demo: install
	$(VENV)/bin/crm-telephony demo

serve: install
	$(VENV)/bin/crm-telephony serve

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy crm_core telephony notifier web
	$(VENV)/bin/lint-imports

test: install browser lint node_modules asterisk
	$(VENV)/bin/pytest -q

bench: install
	$(PY) bench/run_all.py
