# Model Registry: `make run` starts the service, `make test` runs the tests.
# Both create the virtual environment in .venv on first use (only Python 3.11 is needed).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8700
PYTEST_ARGS ?=

.PHONY: architecture lock smoke run test bench bench-scale fuzz load lint typecheck format check migrations install install-dev clean

# Installs come from the locks only (every package pinned, with hashes): requirements.txt is what
# production runs (the image installs the same file), requirements-dev.txt adds the dev tools on top.
$(VENV)/.runtime-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt -r requirements-dev.txt
	touch $@

# Recompile the locks from requirements.in / requirements-dev.in (pip-tools, with hashes). Existing pins
# are kept unless their source's range excludes them; LOCK_ARGS=--upgrade moves every pin to the newest allowed.
LOCK_ARGS ?=
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: install-dev
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

# Embedded defaults (SQLite in data/, local cache, no Redis); DEBUG on unless set.
# A busy port stops it first (PORT=8701 make run). Then migrate, admin user, schedules, sources + first
# discovery; then web (granian, in this terminal), worker and beat (logs in data/logs/). The last lines
# printed are the URLs and the admin's credentials. Ctrl-C stops all three (registry_project/runall.py).
run: install
	DEBUG=$${DEBUG:-true} HOST=$(HOST) PORT=$(PORT) WEB_CONCURRENCY=$${WEB_CONCURRENCY:-2} \
		exec $(PY) -m registry_project.runall

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The production install as the image runs it (tests/smoke_production.py): a virtualenv holding only
# requirements.txt, then entrypoint.sh web, worker and beat with DEBUG=false on PostgreSQL and Redis
# (SMOKE_ADMIN_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres, creates the database
# registry_smoke; SMOKE_REDIS_URL, default redis://127.0.0.1:6379/11, is flushed). CI runs it first.
PROD_VENV ?= .venv-production
$(PROD_VENV)/.installed: requirements.txt
	rm -rf $(PROD_VENV)
	$(PYTHON) -m venv $(PROD_VENV)
	$(PROD_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements.txt
	touch $@

smoke: install-dev $(PROD_VENV)/.installed
	$(PY) -m tests.smoke_production --venv $(PROD_VENV)

# Benchmarks of the architecture's performance targets; each bench/bench_*.py prints its figures.
# They need PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/registry_bench).
bench: install-dev
	@for script in bench/bench_*.py; do \
		[ "$$script" = bench/bench_scale.py ] && continue; \
		echo "== $$script"; $(PY) $$script || exit 1; done

# The scale figures of issue 21 (docs/BENCHMARKS.md#usage-rollups), one line each "FIGURE <name>: ... ok|MISSED":
# BENCH_SCALE_ROWS (default 100,000,000) usage rows over 90 days in the database bench_scale[_NAME]
# (recreated, dropped at the end unless BENCH_SCALE_KEEP=1); REDISDB=n gives it Redis db n. Hours at
# the full size: develop with BENCH_SCALE_ROWS=2000000. Figure modules are listed in bench/bench_scale.py.
# Then the router's token-less read against a JWT read (bench/scale_router.py, needs wrk) and a 60 s
# PostgreSQL outage under 50 usage clients (bench/scale_outage.py; BENCH_OUTAGE_SECONDS shortens it),
# each in a schema of its own of BENCH_DATABASE_URL (default registry_bench, created if missing).
# Every script runs; exits 1 when a figure is MISSED or a script fails.
NAME ?=
REDISDB ?=
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/registry_bench
bench-scale: install-dev
	@status=0; \
	BENCH_SCALE_DATABASE_URL=$${BENCH_SCALE_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/bench_scale$(if $(NAME),_$(NAME))} \
		$(if $(REDISDB),BENCH_REDIS_URL=redis://127.0.0.1:6379/$(REDISDB)) $(PY) bench/bench_scale.py || status=1; \
	$(PY) -c "import sys, psycopg; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); \
		c = psycopg.connect(sys.argv[1].replace(u.path, '/postgres'), autocommit=True); \
		c.execute('SELECT 1 FROM pg_database WHERE datname = %s', [u.path[1:]]).fetchone() or c.execute('CREATE DATABASE \"' + u.path[1:] + '\"')" \
		"$(BENCH_DATABASE_URL)" || status=1; \
	for script in bench/scale_router.py bench/scale_outage.py; do \
		echo "== $$script"; \
		BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(if $(REDISDB),BENCH_REDIS_URL=redis://127.0.0.1:6379/$(REDISDB)) \
			$(PY) $$script || status=1; \
	done; \
	exit $$status

# Reliability figures (docs/RELIABILITY.md) against the production web server on PostgreSQL and Redis:
# LOAD_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/registry_load, recreated) and
# LOAD_REDIS_URL (default redis://127.0.0.1:6379/14). FUZZ_EXAMPLES (100) cases per operation.
fuzz: install-dev
	$(PY) bench/fuzz.py

# 50 clients for 60 s (LOAD_CLIENTS, LOAD_SECONDS): reads, selections and usage writes.
load: install-dev
	$(PY) bench/load.py

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install-dev
	DEBUG=true $(VENV)/bin/mypy .

migrations: install-dev
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

# The import contract of docs/architecture.md: imports only run from entry points down to the domain.
architecture: install-dev
	DEBUG=true $(PY) -m pytest -q -p no:cacheprovider tests/test_architecture.py

check: lint typecheck migrations architecture

clean:
	rm -rf $(VENV) $(PROD_VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles
