# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, migrate, serve HTTP + /ws on http://127.0.0.1:8000
#   make test   create .venv, install the dev tools, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test install install-dev migrate lint docs-refresh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .

install-dev: install
	$(BIN)/pip install --quiet -r requirements-dev.txt

migrate: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0

run: migrate
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

test: install-dev
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

# Copy what the last acceptance run measured and photographed (var/test-results/) into docs/, on purpose:
# `make test` itself never touches tracked files.
docs-refresh:
	cp var/test-results/reliability-results.json docs/reliability-results.json
	cp var/test-results/screenshots/*.png docs/screenshots/
