# Two commands: `make demo` and `make test`. Everything else is a step they use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

.PHONY: demo test lint bench clean setup system-deps

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Chromium, SpamAssassin, Node.js: the real tools the test suite checks the email with.
system-deps:
	scripts/install-system-deps

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/digest --config samples/feeds.yaml demo

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench
	$(BIN)/mypy

test: system-deps lint $(NODE_STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules samples/digest.db* outbox/*/ tests/artifacts .pytest_cache .mypy_cache .ruff_cache
