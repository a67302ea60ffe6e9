# cogtiler: the two commands a newcomer needs are `make run` and `make test`.
# Both create the Python 3.12 virtual environment (.venv) and install everything first.

PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAGE  ?= dev
# pytest-xdist workers; CI machines have 2 cores.
WORKERS ?= 2

.PHONY: setup run test bench clean

$(VENV)/.installed: requirements-runtime.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 12), \
	  "cogtiler needs Python 3.12 (the Lambda runtime Chalice targets is the version that runs it); got " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## setup: create .venv (Python 3.12) with the runtime, dev and test dependencies
setup: $(VENV)/.installed

## run: serve the API and the map viewer on http://$(HOST):$(PORT)/ (demo dataset preloaded)
run: setup
	@echo "cogtiler: open http://$(HOST):$(PORT)/ for the map viewer (stage $(STAGE))"
	$(BIN)/chalice local --stage $(STAGE) --host $(HOST) --port $(PORT)

## test: lint, then run the whole test suite
test: setup
	$(BIN)/ruff check app.py chalicelib tests bench scripts
	$(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .chalice/deployments

## bench: warm tile time against rio-tiler on the same tiles (not part of `make test`)
bench: setup
	$(BIN)/python bench/warm_tiles.py
