# Two commands on a fresh machine:  make demo  and  make test.
# Each creates .venv on first use and installs the pinned set-up of constraints.txt:
# pip, setuptools and wheel, then torch==2.13.0 (an unpinned torch would pull several GB of
# CUDA packages), then this project with its dev extra, every package at its locked version.
# `make lock` refreshes constraints.txt from what a new venv resolves today (then run
# `rm -rf .venv && make test`, and commit the lock if the tests pass).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := constraints.txt
PIP_INSTALL = -m pip install --quiet --disable-pip-version-check
TGMA_DATA ?= $(abspath ../shared/data)
export TGMA_DATA

.PHONY: demo test test-slow lint venv lock check-lock

venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -c $(LOCK) pip setuptools wheel
	$(PY) $(PIP_INSTALL) -c $(LOCK) torch==2.13.0
	$(PY) $(PIP_INSTALL) -c $(LOCK) --no-build-isolation -e '.[dev]'
	$(PY) tools/lock.py check $(LOCK)
	$(PY) -m tg_metricattn.layers.cpu_kernels
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tg_metricattn.experiments.cli demo

check-lock: $(STAMP)
	$(PY) tools/lock.py check $(LOCK)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint check-lock
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# The lock: a new venv with no constraints (pip, setuptools, wheel and the dev extra at their
# newest releases, torch at 2.13.0), frozen without the project itself.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python $(PIP_INSTALL) --upgrade pip setuptools wheel
	.venv-lock/bin/python $(PIP_INSTALL) torch==2.13.0
	.venv-lock/bin/python $(PIP_INSTALL) --no-build-isolation -e '.[dev]'
	.venv-lock/bin/python tools/lock.py freeze > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock
	@echo "$(LOCK) refreshed: now rm -rf $(VENV) && make test, and commit $(LOCK) if it passes"
