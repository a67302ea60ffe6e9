# cogtiler: the two commands a newcomer needs are `make run` and `make test`.
# Both create the Python 3.12 virtual environment (.venv) and install everything first.

PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAGE  ?= dev
# pytest-xdist workers; CI machines have 2 cores. --dist loadfile keeps a test file on one
# worker, so the Lambda package (tests/test_lambda_package.py) is built once.
WORKERS ?= 2

.PHONY: setup run test unit lint typecheck screenshots fuzz mosaic bench vendor package verify-package policy deploy layer \
        delete deploy-rehearsal clean

$(VENV)/.installed: requirements-runtime.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 12), \
	  "cogtiler needs Python 3.12 (the Lambda runtime Chalice targets is the version that runs it); got " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## setup: create .venv (Python 3.12) with the runtime, dev and test dependencies
setup: $(VENV)/.installed

## run: serve the API and the map viewer on http://$(HOST):$(PORT)/ (demo dataset preloaded;
##      RELOAD=1 restarts on code changes; ALLOWED_SOURCES=... in the environment wins)
run: setup
	@echo "cogtiler: open http://$(HOST):$(PORT)/ for the map viewer (stage $(STAGE))"
	@exec $(BIN)/python tools/run.py --stage $(STAGE) --host $(HOST) --port $(PORT) $(if $(RELOAD),--reload)

## test: lint, typecheck, then the whole test suite (installs Chromium for the browser tests,
##       PostgreSQL + PostGIS for the STAC API tests)
test: lint typecheck
	$(BIN)/python tools/browser.py --install
	$(BIN)/python tools/stacapi.py --install
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

## unit: the fast part of the suite (under a minute): all but the browser, package,
##       rehearsal, fuzz, server and memory suites (pytest.ini's markers; run one with -m NAME)
unit: setup
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile \
	  -m "not (browser or package or rehearsal or fuzz or server or memory)" $(PYTEST_ARGS)

## lint: ruff (pycodestyle, pyflakes, bugbear, import order, pyupgrade, complexity,
##       docstrings: ruff.toml)
lint: setup
	$(BIN)/ruff check app.py chalicelib tests bench scripts tools

## typecheck: mypy on chalicelib (mypy.ini; strict for core/ and grids/)
typecheck: setup
	$(BIN)/mypy

## screenshots: the map viewer's states, from the browser tests, into docs/screenshots/
screenshots: setup
	$(BIN)/python tools/browser.py --install
	SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/test_viewer.py

## fuzz: schemathesis from /openapi.json against chalice local, longer than the test suite's run
fuzz: setup
	$(BIN)/python tools/fuzz_api.py --examples $(or $(EXAMPLES),200) --max-time 3600

## mosaic: a MosaicJSON NAME.json from GeoTIFFs (files, folders/ or s3://prefixes/) in SOURCES
mosaic: setup
	$(BIN)/python tools/make_mosaic.py $(NAME) $(SOURCES) $(if $(OVERWRITE),--overwrite)

## vendor: build vendor/ for Lambda (Docker if an engine answers, else pip; VENDOR_MODE=docker|pip, ARCH=x86_64|arm64)
vendor: setup
	$(BIN)/python tools/vendor.py $(if $(VENDOR_MODE),--mode $(VENDOR_MODE)) $(if $(ARCH),--arch $(ARCH))

## package: chalice package --stage $(STAGE), offline, checked (sizes, duplicates, runtime, policy)
package: setup
	$(BIN)/python tools/package.py --stage $(STAGE)

## verify-package: run the built package through awslambdaric like Lambda does; reports cold start
verify-package: setup
	$(BIN)/python tools/verify_package.py --stage $(STAGE)

## policy: regenerate .chalice/policy-$(STAGE).json from the stage's ALLOWED_SOURCES
policy: setup
	$(BIN)/python tools/policy.py --stage $(STAGE)

## deploy: the stage's checks, its layers (dependencies, assets, code) that changed, then
##         chalice deploy --stage $(STAGE) of app.py alone (needs AWS credentials and vendor/)
deploy: setup
	$(BIN)/python tools/deploy.py deploy --stage $(STAGE)

## layer: publish the stage's layers from vendor/ and chalicelib/, each only if its hash is new
layer: setup
	$(BIN)/python tools/deploy.py layer --stage $(STAGE)

## delete: chalice delete --stage $(STAGE), then the stage's layer versions
delete: setup
	$(BIN)/python tools/deploy.py delete --stage $(STAGE)

## deploy-rehearsal: chalice deploy/delete --stage prod against moto on 127.0.0.1, checked
deploy-rehearsal: setup
	$(BIN)/python -m pytest -v -p no:cacheprovider tests/test_rehearsal.py

clean:
	rm -rf $(VENV) build .pytest_cache .chalice/deployments
	find vendor -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

## bench: every benchmark against rio-tiler/titiler, then docs/performance.md (not in `make test`)
bench: setup
	$(BIN)/python bench/warm_tiles.py
	$(BIN)/python bench/handler.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/requests.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/mosaic.py
	$(BIN)/python bench/shapes.py
	$(BIN)/python bench/band_subset.py
	$(BIN)/python bench/egress.py
	$(BIN)/python bench/catalog.py
	$(BIN)/python bench/report.py
