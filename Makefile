# Two entry points: `make demo` (the service on the embedded defaults, with a replayed PBX)
# and `make test` (installs everything, then lint, types, import rules and the whole test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install constraints audit browser asterisk demo serve test lint bench

# constraints.txt pins every package (build backend included) to the versions of a working venv:
# each machine and CI installs the same set, and a new release upstream changes nothing here
# until `make constraints` takes it in on purpose.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools -c constraints.txt
	$(PY) -m pip install -q -e '.[dev]' -c constraints.txt --build-constraint constraints.txt
	touch $@

install: $(VENV)/.installed

# After upgrading a package in the venv (pip install -U NAME) and passing `make test`:
# write the venv's exact versions back (the project itself, installed editable, is left out).
constraints:
	@test -x $(PY) || { echo "no $(VENV): run make install first"; exit 1; }
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --all --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt

# Known vulnerabilities in the pinned set, from an OSV advisory source (AUDIT_OSV_URL: a local
# mirror of the OSV API; else the public one) or PyPI's; says so and exits 0 when none answers.
audit: install
	$(PY) tools/audit.py

# Tools from npm: Stoplight Prism serves a mock of Twilio's API from tests/fixtures/twilio;
# TypeScript type-checks the pages' modules (make lint).
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

lint: install node_modules
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy crm_core telephony notifier web
	$(VENV)/bin/lint-imports
	# the pages' ES modules: JSDoc types checked by TypeScript (web/pages/tsconfig.json), no build
	npx --no-install tsc -p web/pages

# The suite on TEST_WORKERS processes (pytest-xdist), each with its own embedded PostgreSQL and,
# for tests/live, its own Asterisk: most of the time is spent waiting on the PBX's real timers
# and the browser, so two workers on two cores take ~60% of the time one does.
TEST_WORKERS ?= 2

test: install browser lint node_modules asterisk
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS)

bench: install
	$(PY) bench/run_all.py
