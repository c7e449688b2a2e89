# Two commands for a newcomer (see README):  make demo  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

# torch first, pinned: these versions resolve from the machine's local wheel files.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/python examples/quickstart.py

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check mmenc plugins tests examples benchmarks
	$(BIN)/ruff format --check mmenc plugins tests examples benchmarks
	$(BIN)/mypy mmenc plugins

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
