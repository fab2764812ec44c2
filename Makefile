# Two entry points, each of which sets everything up first:
#   make repro   - create .venv, install, run the pipeline (dvc repro, embedded Ray)
#   make test    - create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
# The CPU build on this project's machines; override on a GPU box, e.g. TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
# Two pytest workers (pytest-xdist), one module per worker at a time, the 25 slowest tests
# listed at the end; TEST_ARGS= runs serially
TEST_ARGS ?= -n 2 --dist loadscope --no-loadscope-reorder --durations=25
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup repro test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(TEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/stacks.py

clean-venv:
	rm -rf $(VENV)
