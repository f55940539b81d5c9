# Two commands do everything on a fresh machine (see README.md):
#   make book   set up, execute every chapter in the `cpu` profile, render HTML to _build/html
#   make test   set up, run the unit tests and execute every notebook in the `smoke` profile, on the
#               offline source and then on the hub source against a hub-shaped fixture (`make test-hub`)
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv first on PATH, so notebook kernels run its Python.
export PATH := $(BIN):$(PATH)
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1

# The hub path without the hub: tiny models, data sets and metrics under their hub names (tests/hub_fixture.py).
HUB_FIXTURE := $(CURDIR)/.hub-fixture
HUB_ENV := COMPANION_SOURCE=hub HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 HF_HOME=$(HUB_FIXTURE)

.PHONY: setup book test test-hub benchmark clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed
	$(BIN)/python -m companion fetch

book: setup
	COMPANION_PROFILE=$${COMPANION_PROFILE:-cpu} $(BIN)/jupyter-book build --warningiserror --keep-going .

test: setup
	COMPANION_PROFILE=smoke $(BIN)/python -m pytest tests book --nbmake --nbmake-timeout=1800 -p no:cacheprovider
	$(MAKE) test-hub

test-hub: setup
	$(BIN)/python tests/hub_fixture.py $(HUB_FIXTURE)
	$(HUB_ENV) COMPANION_PROFILE=smoke $(BIN)/python -m pytest tests/test_hub_fixture.py tests/test_hub_manifest.py \
		book --nbmake --nbmake-timeout=1800 -p no:cacheprovider

benchmark: setup
	$(BIN)/python benchmarks/padding.py
	$(BIN)/python benchmarks/prefix_cache.py

clean:
	rm -rf _build $(VENV) book/results $(HUB_FIXTURE)
