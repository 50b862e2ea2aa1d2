# decaenv developer entry points. Both targets are idempotent: the second run only re-runs the job.
#   make run   create .venv, install decaenv (+ torch CPU build when the venv has none), run the doctor
#              and the end-to-end self-test on synthetic weights
#   make test  same set-up, then `make lint` and the full test suite
#   make test-fast  same set-up, then the fast loop (unit tests and small end-to-end runs, about a minute)
#   make lint  ruff (lint + format check) and mypy on decaenv/ (configured in pyproject.toml)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.decaenv-installed
WHEELHOUSE := $(VENV)/wheelhouse
EXTRAS ?= dev
# The CPU build of torch. On this project's machines pip finds it on local disk; never pull a CUDA build here.
TORCH_SPEC ?= torch==2.13.0
# The MTCNN weights are manifest files (`decaenv fetch mtcnn`, sha256-pinned members of
# facenet-pytorch's wheel). The tests import them offline from this copy of the wheel (set-up may use PyPI).
MTCNN_WHEEL := $(VENV)/wheelhouse-mtcnn/facenet_pytorch-2.6.0-py3-none-any.whl
SHARED_ASSETS ?= $(abspath ../shared/assets)
PYTEST_ARGS ?=

.PHONY: setup run lint typecheck test test-fast clean
setup: $(STAMP) $(MTCNN_WHEEL)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	@if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH_SPEC) (CPU build)"; $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

$(MTCNN_WHEEL): | $(BIN)/python
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: -d $(dir $@) facenet-pytorch==2.6.0

# Wheels for the offline compatibility-matrix smoke test (set-up may use the registries; tests never do).
$(WHEELHOUSE)/.complete: $(STAMP) scripts/compat_matrix.py pyproject.toml
	$(BIN)/python scripts/compat_matrix.py --download-wheels $(WHEELHOUSE)

run: setup
	@$(BIN)/decaenv doctor || echo "(the doctor reported problems above; running the self-test anyway)"
	$(BIN)/decaenv selftest

# Wheels for the doctor's cross-version venv tests (Python 3.9-3.13 x numpy 1.26/2 x chumpy 0.70); as above,
# set-up may use the registries, the tests build their venvs offline from these wheels.
$(VENV)/.doctor-wheelhouse: $(STAMP) tests/_support/venv_matrix.py
	$(BIN)/python tests/_support/venv_matrix.py --prepare && touch $@

# The environment in which DECA's own demos run for tests/compat/test_deca_demos.py (torch 2.14.1 + torchvision
# 0.29.1, ~6 GB, cached under the user cache dir, never in $(VENV)): set-up downloads its wheels, then builds it
# offline once; the test itself only reuses it. Only where DECA's checkout (the test's input) is present.
$(VENV)/.deca-env: $(STAMP) tests/_support/deca_env.py
	@if [ -d "$(SHARED_ASSETS)/deca-src" ]; then $(BIN)/python tests/_support/deca_env.py --prepare --build; \
		else echo "no $(SHARED_ASSETS)/deca-src: the DECA env is not needed"; fi
	touch $@

lint: setup
	$(BIN)/ruff check decaenv tests bench scripts
	$(BIN)/ruff format --check decaenv tests bench scripts
	$(BIN)/mypy

# mypy alone (configured in pyproject.toml; `make lint`, and so `make test`, runs it too).
typecheck: setup
	$(BIN)/mypy

test: setup lint $(WHEELHOUSE)/.complete $(VENV)/.doctor-wheelhouse $(VENV)/.deca-env $(MTCNN_WHEEL)
	@if [ -d "$(SHARED_ASSETS)" ]; then export DECAENV_TEST_ASSETS="$(SHARED_ASSETS)"; fi; \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

# The one-minute loop: unit tests and small end-to-end runs on the procedural synthetic head (not `slow`: no real
# doctor runs, venv matrices, compiles or CLI reconstructions; no DECAENV_TEST_ASSETS), on two pytest-xdist
# workers (FAST_WORKERS=0 runs them in this process; the synthetic data dirs are built once and kept between runs:
# tests/_support/synthetic_cache.py). `make test` is the full suite.
FAST_MARKERS ?= not slow and not ext and not cuda and not network
FAST_WORKERS ?= 2
# torch threads per worker: two workers with two threads each would fight over two cores
FAST_THREADS ?= 1
test-fast: setup
	env -u DECAENV_TEST_ASSETS OMP_NUM_THREADS=$(FAST_THREADS) \
		$(BIN)/python -m pytest -q -n $(FAST_WORKERS) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) decaenv-selftest .pytest_cache
