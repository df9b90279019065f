# Two commands do everything on a fresh machine:
#   make book   set up .venv (if needed) and build the HTML book into book/_build/html
#   make test   set up .venv (if needed), lint, and run the whole test suite (unit, notebooks, book in a browser)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOOK_HTML := book/_build/html

.PHONY: book test lint unit setup clean-book help chromium

help:
	@echo "make book   - set up .venv and build the book into $(BOOK_HTML)"
	@echo "make test   - set up .venv, lint, run all tests"

setup: $(STAMP)

# Re-installs only when a requirements file or pyproject.toml changed (the stamp is older than them).
$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m mnistmem data prepare
	touch $(STAMP)

book: $(STAMP)
	$(PY) -m mnistmem book sync
	$(PY) -m mnistmem book build

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests $(wildcard bench scripts)
	$(VENV)/bin/ruff format --check src tests $(wildcard bench scripts)

unit: $(STAMP)
	$(PY) -m pytest -q -m "not book and not browser and not pipeline"

# The browser tests need Chromium: installed here when missing (as root with apt), else one line says how.
chromium:
	@bash scripts/ensure_chromium.sh

test: chromium $(STAMP) lint
	$(PY) -m pytest -q --durations=15

clean-book:
	rm -rf book/_build
