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

# The main job: zero-shot comparisons, offline. Texts: the embedded all-MiniLM-L6-v2 (real
# weights) against tiny-bert; images: the tiny random CLIP and SigLIP test models.
demo: install
	$(BIN)/mmenc compare --dataset topics --model minilm-l6 --model tiny-bert --out mmenc-report/text
	$(BIN)/mmenc compare --dataset shapes --model tiny-clip --model tiny-siglip --limit 120 \
		--out mmenc-report/images
	@echo "Note: tiny-bert, tiny-clip and tiny-siglip have random weights, so their accuracy is"
	@echo "chance (1 in 6 here); they show the flow until a trained image-text model ships."

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
