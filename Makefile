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
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $@

# The main job: zero-shot comparisons, offline. Texts: the embedded all-MiniLM-L6-v2 (real
# weights) against tiny-bert. Images: the shipped lit-demo (trained; its text side is MiniLM)
# on held-out shapes, side by side with MiniLM on sentences describing the same shapes, and
# tiny-clip (random weights: chance); then lit-demo on the held-out handwritten digits.
demo: install
	$(BIN)/mmenc compare --dataset topics --model minilm-l6 --model tiny-bert --out mmenc-report/text
	$(BIN)/mmenc compare --dataset shapes --dataset shapes-text --model lit-demo --model minilm-l6 \
		--model tiny-clip --templates "a drawing of a {}." --out mmenc-report/shapes
	$(BIN)/mmenc compare --dataset digits-test --model lit-demo --model tiny-clip \
		--templates "a handwritten {}." --out mmenc-report/digits
	@echo "Note: tiny-bert and tiny-clip have random weights (accuracy at chance): they show that"
	@echo "any registered model runs in the same comparison."

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
