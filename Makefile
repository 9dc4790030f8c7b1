# Two commands for a fresh clone (only Python 3.11+ and make needed):
#   make demo   set up a virtualenv, migrate SQLite, load demo data, print an admin login,
#               and serve the example site on http://127.0.0.1:8000
#   make test   install the test dependencies and run the whole test suite on SQLite
#   make lint   mypy --strict, ruff, and the reStructuredText of README and CHANGES, as CI runs them
#   make docs   the Sphinx documentation (docs/ -> docs/_build/html), warnings as errors
#   make bench  the peer and raw-limit benchmarks (docs/benchmarks.rst)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test test-postgres lint docs bench venv install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,example]"

venv: install

# The demo alone runs with DEBUG on (static files, tracebacks); the example site's default is off.
demo: export DJANGO_DEBUG = 1
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo_data
	$(BIN)/python manage.py ensure_admin --base-url http://127.0.0.1:$(PORT)
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(BIN)/python -m pytest

# README and CHANGES are checked as the package index renders them (plain docutils); docs/ is
# checked by Sphinx in `make docs`, whose directives and roles plain docutils does not know.
lint: install
	$(BIN)/python -m pip install --quiet -e ".[lint]"
	$(BIN)/mypy
	$(BIN)/ruff check .
	for doc in README.rst CHANGES.rst; do $(BIN)/python -m docutils --halt=warning $$doc /dev/null || exit 1; done

docs: install
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -W --keep-going -n -b html -d docs/_build/doctrees docs docs/_build/html

# Ours against the reference Node server (both on SQLite) and against the raw psycopg limit on
# PostgreSQL (DATABASE_URL's server, default 127.0.0.1:5432); prints the tables of ratios.
# The issue's tables of ratios: against the Node peer (SQLite), pulls against the raw psycopg
# limit and 8 pushing clients against the raw psycopg loop (PostgreSQL on 127.0.0.1:5432).
bench: install
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/peer.py --rows $${BENCH_ROWS:-100000}
	$(BIN)/python bench/pull.py --rows $${BENCH_ROWS:-100000} --skip-client
	$(BIN)/python bench/push.py --clients 8 --rows $${BENCH_ROWS:-100000}

test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/offline_sync} $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info db.sqlite3 docs/_build
